"""Settings of the agent-runner service, from the environment; validated at start-up."""

from __future__ import annotations

from agentia.settings import ServiceSettings


class AgentRunnerSettings(ServiceSettings):
    """The agent-runner service's settings (the shared ones, so far)."""
