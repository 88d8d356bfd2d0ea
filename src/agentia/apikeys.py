"""The gateway's API keys: made by the CLI, kept hashed in the secret store, checked by the gateway.

A key reads ``agk_<id>_<secret>``: the id finds its record without a scan, and only the
SHA-256 of the whole key is kept (keys are 256-bit random, so a plain hash is enough; no
one can recover a key from the store). No Dapr here: the CLI and the gateway share it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Scope = Literal["read", "write"]
PREFIX = "agk"
KEY_RE = re.compile(r"^agk_([0-9a-f]{12})_([A-Za-z0-9_-]{40,64})$")
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$"
# A model as agent definitions name it: offline, openai:gpt-4o-mini, compatible:llama3.1:8b.
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._/@+-]{0,127}$")
LIMIT_RE = re.compile(r"^(?P<model>[^=]+)=(?P<count>[0-9]+)/(?P<per>min|day)$")


class ModelLimit(BaseModel):
    """How many model requests a key's runs may make to one model (requests counted from the
    model responses, as usage is)."""

    model_config = ConfigDict(extra="forbid")

    per_minute: int | None = Field(
        default=None, ge=1, description="Model requests per UTC minute; None: no limit."
    )
    per_day: int | None = Field(
        default=None, ge=1, description="Model requests per UTC day; None: no limit."
    )


def check_model_name(model: str) -> str:
    if not MODEL_RE.match(model):
        raise ValueError(
            f"'{model}' is not a model name (as agent definitions name them: offline, "
            "openai:<model>, compatible:<model>)"
        )
    return model


def parse_model_limits(specs: list[str]) -> dict[str, ModelLimit]:
    """``["offline=60/min", "offline=1000/day"]`` as limits by model; ValueError naming the
    bad one."""
    limits: dict[str, ModelLimit] = {}
    for spec in specs:
        m = LIMIT_RE.match(spec.strip())
        if m is None or int(m.group("count")) < 1:
            raise ValueError(f"'{spec}': write MODEL=N/min or MODEL=N/day, N at least 1")
        model = check_model_name(m.group("model").strip())
        field = "per_minute" if m.group("per") == "min" else "per_day"
        current = limits.get(model, ModelLimit())
        limits[model] = current.model_copy(update={field: int(m.group("count"))})
    return limits


def describe_limits(limits: dict[str, ModelLimit]) -> str:
    """Limits as the CLI takes them: ``offline=60/min offline=1000/day``."""
    parts = []
    for model, limit in sorted(limits.items()):
        if limit.per_minute:
            parts.append(f"{model}={limit.per_minute}/min")
        if limit.per_day:
            parts.append(f"{model}={limit.per_day}/day")
    return " ".join(parts)


class KeyRecord(BaseModel):
    """What the store keeps of one API key: never the key itself."""

    id: str = Field(pattern=r"^[0-9a-f]{12}$", description="Public id, part of the key.")
    name: str = Field(pattern=NAME_RE, description="Who or what the key is for.")
    scope: Scope = Field(description="read: GET and searches; write: everything.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the whole key.")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, description="Requests per minute; None: the gateway's default."
    )
    token_budget_per_day: int | None = Field(
        default=None,
        ge=1,
        description="Model tokens (input + output) its runs may use per UTC day; None: no budget.",
    )
    cost_budget_micro_usd_per_day: int | None = Field(
        default=None,
        ge=1,
        description="What its runs' model usage may cost per UTC day, in micro-dollars "
        "(1 USD = 1,000,000), priced by the gateway's price table; None: no budget.",
    )
    model_limits: dict[str, ModelLimit] = Field(
        default_factory=dict,
        description="Model requests per minute / per day, by model name; a model not named "
        "here is not limited.",
    )
    created_at: str = Field(description="When the key was made (ISO 8601, UTC).")

    @field_validator("model_limits")
    @classmethod
    def _model_names(cls, value: dict[str, ModelLimit]) -> dict[str, ModelLimit]:
        for model in value:
            check_model_name(model)
        return value


class KeyRing(BaseModel):
    """All keys, as stored under one secret (a JSON document)."""

    keys: dict[str, KeyRecord] = Field(default_factory=dict, description="Records by key id.")

    def to_secret(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    @classmethod
    def from_secret(cls, raw: str | None) -> KeyRing:
        """Parse the stored document; an empty or missing one is an empty ring."""
        if not raw:
            return cls()
        try:
            return cls.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"the stored API keys are not valid: {exc}") from None

    def verify(self, key: str) -> KeyRecord | None:
        """The record of ``key`` when it is one of ours, in constant time per candidate."""
        m = KEY_RE.match(key.strip())
        if m is None:
            return None
        record = self.keys.get(m.group(1))
        if record is None:
            return None
        given = hashlib.sha256(key.strip().encode()).hexdigest()
        return record if hmac.compare_digest(given, record.sha256) else None


def new_key(
    name: str,
    scope: Scope,
    rate_limit_per_minute: int | None = None,
    token_budget_per_day: int | None = None,
    cost_budget_micro_usd_per_day: int | None = None,
    model_limits: dict[str, ModelLimit] | None = None,
) -> tuple[str, KeyRecord]:
    """A fresh key (shown once to the user) and the record to store."""
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(
        id=key_id,
        name=name,
        scope=scope,
        sha256=hashlib.sha256(key.encode()).hexdigest(),
        rate_limit_per_minute=rate_limit_per_minute,
        token_budget_per_day=token_budget_per_day,
        cost_budget_micro_usd_per_day=cost_budget_micro_usd_per_day,
        model_limits=model_limits or {},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return key, record


def describe(record: KeyRecord) -> dict[str, Any]:
    """A record as the CLI lists it (no hash)."""
    return record.model_dump(exclude={"sha256"})
