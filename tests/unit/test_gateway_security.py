"""The gateway's refusal of text PostgreSQL cannot store, and nothing else."""

from __future__ import annotations

import json

import pytest

from agentia_gateway.security import unstorable


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
