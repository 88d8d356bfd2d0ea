"""Agentia: OpenAI Agents SDK agents as an event-driven mesh of services on Dapr."""

__version__ = "0.1.0"
