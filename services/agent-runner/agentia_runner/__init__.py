"""The agent-runner service: runs agents (OpenAI Agents SDK) and hosts the workflow worker."""
