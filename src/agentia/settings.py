"""Settings every service shares; each service's own ``settings.py`` extends this.

Read from the environment at start-up and validated there: a missing secret or a bad
value stops the process at once with a message naming the variable, never later.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Where the service and its sidecar listen, and the tokens between them."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    app_id: str = Field(validation_alias="APP_ID", description="This service's Dapr app id.")
    app_host: str = Field(default="127.0.0.1", validation_alias="APP_HOST")
    app_port: int = Field(validation_alias="APP_PORT", gt=0, lt=65536)
    dapr_host: str = Field(default="127.0.0.1", validation_alias="DAPR_HOST")
    dapr_http_port: int = Field(validation_alias="DAPR_HTTP_PORT", gt=0, lt=65536)
    dapr_grpc_port: int = Field(validation_alias="DAPR_GRPC_PORT", gt=0, lt=65536)
    # No defaults for secrets: the supervisor passes them; a service without them refuses to start.
    dapr_api_token: SecretStr = Field(
        validation_alias="DAPR_API_TOKEN", description="Sent to the sidecar on every call."
    )
    app_api_token: SecretStr = Field(
        validation_alias="APP_API_TOKEN", description="The sidecar sends it on every call to us."
    )
    log_level: str = Field(default="INFO", validation_alias="AGENTIA_LOG_LEVEL")
    sidecar_timeout_s: float = Field(
        default=20.0, validation_alias="AGENTIA_SIDECAR_TIMEOUT_S", gt=0
    )
    fault_injection: bool = Field(
        default=False,
        validation_alias="AGENTIA_FAULT_INJECTION",
        description="Serve POST /internal/faults (crash points, for tests); never in production.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="AGENTIA_OTLP_ENDPOINT",
        description="OTLP/HTTP endpoint for spans (http://127.0.0.1:4318); none: kept nowhere.",
    )
    trace_sampling: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        validation_alias="AGENTIA_TRACE_SAMPLING",
        description="Share of new traces kept (0 to 1); a call from a traced caller is traced.",
    )

    @property
    def dapr_http_url(self) -> str:
        return f"http://{self.dapr_host}:{self.dapr_http_port}"

    @property
    def dapr_grpc_address(self) -> str:
        return f"{self.dapr_host}:{self.dapr_grpc_port}"
