"""Settings of the agent-runner service, from the environment; validated at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from agentia.paths import repo_root
from agentia.settings import ServiceSettings


class AgentRunnerSettings(ServiceSettings):
    """Where agent definitions live, how many runs at once, and how to reach real models."""

    agents_dir: Path = Field(
        default_factory=lambda: repo_root() / "agents", validation_alias="AGENTIA_AGENTS_DIR"
    )
    max_concurrent_runs: int = Field(default=4, ge=1, le=256, validation_alias="AGENTIA_MAX_RUNS")
    max_turns: int = Field(default=10, ge=1, le=100, validation_alias="AGENTIA_MAX_TURNS")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    model_base_url: str | None = Field(default=None, validation_alias="AGENTIA_MODEL_BASE_URL")
    model_api_key: SecretStr | None = Field(default=None, validation_alias="AGENTIA_MODEL_API_KEY")
