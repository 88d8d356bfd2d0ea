"""Settings of the memory service, from the environment; validated at start-up.

The database URL is not a setting: it is read from the secret store through the sidecar.
"""

from __future__ import annotations

from pydantic import Field

from agentia.settings import ServiceSettings


class MemorySettings(ServiceSettings):
    """The memory service's settings. An OpenAI-compatible endpoint's key, when one is
    used for embeddings or extraction, comes from the secret store (``openai-api-key``)."""

    embeddings: str = Field(
        default="minilm",
        validation_alias="AGENTIA_EMBEDDINGS",
        pattern="^(minilm|openai|hash)$",
        description="Embedding provider: minilm (offline, default), openai or hash.",
    )
    embeddings_base_url: str | None = Field(
        default=None, validation_alias="AGENTIA_EMBEDDINGS_BASE_URL"
    )
    embeddings_model: str | None = Field(default=None, validation_alias="AGENTIA_EMBEDDINGS_MODEL")
    embeddings_dim: int | None = Field(
        default=None, validation_alias="AGENTIA_EMBEDDINGS_DIM", gt=0
    )
    extraction_model: str | None = Field(
        default=None,
        validation_alias="AGENTIA_MEMORY_EXTRACTION_MODEL",
        description="Chat model that distils runs into memories; unset = offline heuristics.",
    )
    extraction_base_url: str | None = Field(
        default=None, validation_alias="AGENTIA_MEMORY_EXTRACTION_BASE_URL"
    )
    merge_threshold: float = Field(
        default=0.88, validation_alias="AGENTIA_MEMORY_MERGE_THRESHOLD", gt=0, le=1
    )
    store_sweep_s: float = Field(default=15.0, validation_alias="AGENTIA_STORE_SWEEP_S", gt=0)
    cache_ttl_s: int = Field(default=60, validation_alias="AGENTIA_MEMORY_CACHE_TTL_S", gt=0)
