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

from pydantic import BaseModel, Field, ValidationError

Scope = Literal["read", "write"]
PREFIX = "agk"
KEY_RE = re.compile(r"^agk_([0-9a-f]{12})_([A-Za-z0-9_-]{40,64})$")
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$"


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
    created_at: str = Field(description="When the key was made (ISO 8601, UTC).")


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
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return key, record


def describe(record: KeyRecord) -> dict[str, Any]:
    """A record as the CLI lists it (no hash)."""
    return record.model_dump(exclude={"sha256"})
