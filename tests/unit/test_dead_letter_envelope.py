"""What a dead-letter subscription hands the app (raw bytes, base64 in a wrapper) becomes the
event that was dead-lettered, or, for bytes that are no CloudEvent, an envelope that keeps
them under a stable id."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from agentia.service import dead_letter_envelope, event_traceparent
from agentia_runner.handlers import expired_at


def wrapped(raw: bytes) -> dict[str, object]:
    return {
        "id": "random-each-delivery",
        "specversion": "1.0",
        "datacontenttype": "application/octet-stream",
        "topic": "runs.requested.dlq",
        "data_base64": base64.b64encode(raw).decode(),
    }


def test_a_cloudevent_inside_comes_back_as_it_was_sent() -> None:
    event = {"specversion": "1.0", "id": "e1", "topic": "runs.requested", "data": {"run_id": "r"}}
    # Under the dead-letter topic it was read from: kept as dlq:runs.requested.dlq:e1.
    assert dead_letter_envelope(wrapped(json.dumps(event).encode())) == {
        **event,
        "topic": "runs.requested.dlq",
    }
    assert dead_letter_envelope(event) == event  # delivered as a CloudEvent: unchanged


def test_bytes_that_are_no_cloudevent_are_kept_under_an_id_of_their_own() -> None:
    garbage = b"\x00 this is not a CloudEvent {"
    first, again = dead_letter_envelope(wrapped(garbage)), dead_letter_envelope(wrapped(garbage))
    assert first == again  # a redelivery is the same letter, kept once
    assert first["data"] is None and first["topic"] == "runs.requested.dlq"
    assert base64.b64decode(str(first["data_base64"])) == garbage
    other = dead_letter_envelope(wrapped(b"other bytes"))
    assert other["id"] != first["id"]
    assert dead_letter_envelope(wrapped(b'"json, not an event"'))["data"] is None


def test_a_body_that_is_not_an_object_is_kept_not_raised() -> None:
    assert dead_letter_envelope(["a", "list"])["data"] is None


def test_only_a_well_formed_traceparent_is_taken_from_an_event() -> None:
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert event_traceparent({"traceparent": good}) == good
    for bad in (12345, {"not": "a string"}, "junk", None, good + "x"):
        assert event_traceparent({"traceparent": bad}) is None


def test_an_expiration_that_has_passed_is_named() -> None:
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert expired_at({"expiration": past}) == past
    assert expired_at({"expiration": future}) is None
    assert expired_at({"expiration": "yesterday"}) is None and expired_at({}) is None
