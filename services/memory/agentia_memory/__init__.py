"""The memory service: threads, long-term memory and the store."""
