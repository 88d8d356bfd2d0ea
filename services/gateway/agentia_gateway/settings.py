"""Settings of the gateway service, from the environment; validated at start-up."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from agentia.settings import ServiceSettings
from agentia_gateway.accounting import DEFAULT_PRICES, ModelPrice


class GatewaySettings(ServiceSettings):
    """The public door's limits and policies."""

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="AGENTIA_CORS_ORIGINS",
        description="Origins allowed by CORS, comma-separated (none by default).",
    )
    max_body_bytes: int = Field(
        default=1_048_576, validation_alias="AGENTIA_MAX_BODY_BYTES", ge=1024, le=64 * 1_048_576
    )
    rate_limit_per_minute: int = Field(
        default=600, validation_alias="AGENTIA_RATE_LIMIT_PER_MINUTE", ge=1
    )
    keys_refresh_s: float = Field(default=10.0, validation_alias="AGENTIA_KEYS_REFRESH_S", gt=0)
    run_wait_timeout_s: float = Field(
        default=300.0, validation_alias="AGENTIA_RUN_WAIT_TIMEOUT_S", gt=0
    )
    # A stream is woken when this replica appends to its run's log; events another replica
    # appended are found by reading the log this often.
    stream_poll_s: float = Field(default=0.25, validation_alias="AGENTIA_STREAM_POLL_S", gt=0)
    run_log_ttl_s: int = Field(default=86_400, validation_alias="AGENTIA_RUN_LOG_TTL_S", ge=60)
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        validation_alias="AGENTIA_MODEL_PRICES",
        description="USD per 1M input / output tokens by model, as JSON: "
        '{"openai:gpt-4o-mini": {"input_usd_per_1m": "0.15", "output_usd_per_1m": "0.60"}}. '
        "A model is priced by its own name, else its provider's (openai), else '*'; an "
        "unpriced model costs nothing. Default: the offline model at 1.00 / 2.00 (nominal).",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value
