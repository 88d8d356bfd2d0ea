"""The tool-mcp service: MCP tool servers for the agents."""
