"""The gateway's refusal of text PostgreSQL cannot store, and what it answers before it has
read its API keys."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentia import names
from agentia.apikeys import KeyRing, new_key
from agentia.dapr import DaprError
from agentia_gateway.security import Authenticator, Denied, unstorable


@pytest.mark.parametrize(
    "body",
    [
        b'{"input": "a\\u0000b"}',
        b'{"input": {"text": ["ok", "\\ud83d"]}}',  # high surrogate alone
        b'{"input": "\\ude00 low alone"}',
        b'{"\\u0000key": 1}',
    ],
)
def test_nul_and_unpaired_surrogates_are_refused(body: bytes) -> None:
    assert unstorable(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"input": "plain"}',
        b'{"input": "\\ud83d\\ude00 a real pair"}',
        b'{"input": "caf\\u00e9"}',
        # An agent echoing JSON text: escaped backslashes then "u...", which is storable.
        json.dumps({"text": json.dumps({"\udb7b\ude49": True, "nul": "\\u0000"})}).encode(),
        b"not json \\u0000 at all",
    ],
)
def test_storable_bodies_pass(body: bytes) -> None:
    assert not unstorable(body)


class _Secrets:
    """The two secrets the authenticator reads; the store fails until told otherwise."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring, self.up = ring, False

    async def find_secret(self, name: str) -> str | None:
        if not self.up:
            raise DaprError(500, "secret store not ready")
        return self.ring.to_secret() if name == names.SECRET_GATEWAY_API_KEYS else None


def test_a_replica_without_its_keys_yet_says_retry_not_unknown_key() -> None:
    key, record = new_key("ci", "write")
    store = _Secrets(KeyRing(keys={record.id: record}))
    auth = Authenticator(store, refresh_s=10)  # type: ignore[arg-type]
    for _ in range(2):  # before any read, and after a failed one
        with pytest.raises(Denied) as refused:
            auth.authenticate({"x-api-key": key})
        assert refused.value.status == 503 and "retry" in refused.value.reason
        assert int(refused.value.headers["Retry-After"]) >= 1
        with pytest.raises(DaprError):
            asyncio.run(auth.refresh())
    store.up = True
    asyncio.run(auth.refresh())
    assert auth.authenticate({"x-api-key": key}).id == record.id
    unknown, _ = new_key("other", "write")
    with pytest.raises(Denied) as refused:
        auth.authenticate({"x-api-key": unknown})
    assert refused.value.status == 401
    with pytest.raises(Denied) as refused:
        auth.authenticate({})
    assert refused.value.status == 401  # no key at all is the caller's to fix, loaded or not
