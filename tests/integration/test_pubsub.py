"""Pub/sub through RabbitMQ between two real sidecars: envelope, dead letters, ordering of flow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from agentia.dapr import DaprClient
from agentia.events import RunRequested

from .conftest import ProbeApp, wait_for

pytestmark = pytest.mark.integration


def _publish(pub: ProbeApp, topic: str, event: RunRequested) -> None:
    async def go() -> None:
        async with DaprClient(pub.dapr, pub.token, pub.app_id) as client:
            await client.publish(topic, event)

    asyncio.run(go())


def test_event_published_on_one_sidecar_arrives_on_another_intact(
    probe_apps: Callable[..., ProbeApp],
) -> None:
    sub = probe_apps("sub")
    pub = probe_apps("pub", topic=sub.topic, subscribe=False)
    event = RunRequested(run_id="run-1", agent_id="echo", input={"text": "hello"})

    _publish(pub, sub.topic, event)

    wait_for(lambda: len(sub.received()["received"]) == 1, 30, "event delivery")
    envelope = sub.received()["received"][0]
    assert envelope["id"] == event.event_id
    assert envelope["type"] == "RunRequested"
    assert envelope["source"] == pub.app_id
    assert envelope["specversion"] == "1.0"
    assert envelope["topic"] == sub.topic
    assert envelope["pubsubname"] == "pubsub"
    assert envelope["traceparent"].startswith("00-")
    assert RunRequested.model_validate(envelope["data"]) == event


def test_a_dropped_event_goes_to_the_dead_letter_topic_and_others_flow_on(
    probe_apps: Callable[..., ProbeApp],
) -> None:
    sub = probe_apps("sub")
    pub = probe_apps("pub", topic=sub.topic, subscribe=False)
    poison = RunRequested(run_id="poison", agent_id="echo", metadata={"n": 0})
    poison_data = poison.model_copy()
    good = [RunRequested(run_id=f"good-{i}", agent_id="echo") for i in range(5)]

    # The probe app fails the first deliveries of an event whose data carries "poison": true
    # (retried, as unavailability is), then drops it (an event that can never succeed).
    resp = httpx.post(
        f"{pub.dapr}/v1.0/publish/pubsub/{sub.topic}",
        json={**poison_data.model_dump(mode="json"), "poison": True},
        headers=pub.headers(),
        timeout=10,
    )
    assert resp.status_code == 204, resp.text

    async def go() -> None:
        async with DaprClient(pub.dapr, pub.token, pub.app_id) as client:
            for event in good:
                await client.publish(sub.topic, event)

    asyncio.run(go())

    wait_for(lambda: len(sub.received()["received"]) == len(good), 30, "good events")
    wait_for(lambda: len(sub.received()["dead"]) >= 1, 90, "dead letter")
    state = sub.received()
    assert len(state["dead"]) == 1
    dead = state["dead"][0]
    assert dead["data"]["run_id"] == "poison"
    assert dead["data"]["poison"] is True
    # Retried by the resiliency policy until the app gave up on it.
    assert max(state["attempts"].values()) == 3
    assert {e["data"]["run_id"] for e in state["received"]} == {e.run_id for e in good}


def test_service_invocation_retries_a_flaky_handler(probe_apps: Callable[..., ProbeApp]) -> None:
    target = probe_apps("target")
    caller = probe_apps("caller")
    resp = httpx.post(
        f"{caller.dapr}/v1.0/invoke/{target.app_id}/method/flaky/k1",
        json={"fail_times": 2},
        headers=caller.headers(),
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    # Two 503s were retried by the sidecar; the third call succeeded.
    assert resp.json() == {"key": "k1", "calls": 3}


def test_invocation_without_the_dapr_api_token_is_refused(
    probe_apps: Callable[..., ProbeApp],
) -> None:
    target = probe_apps("target")
    resp = httpx.get(f"{target.dapr}/v1.0/invoke/{target.app_id}/method/livez", timeout=10)
    assert resp.status_code == 401


def test_an_event_whose_trace_fields_are_not_strings_is_delivered_not_fatal(
    probe_apps: Callable[..., ProbeApp],
) -> None:
    """Dapr 1.18.0 panicked the subscriber's sidecar on such an event, again on every
    redelivery (patches/dapr-pubsub-nonstring-trace.patch): the subscription was dead."""
    sub = probe_apps("sub")
    pub = probe_apps("pub", topic=sub.topic, subscribe=False)
    odd = RunRequested(run_id="odd-trace", agent_id="echo")
    cloud_event = {
        "specversion": "1.0",
        "id": odd.event_id,
        "source": "a-careless-producer",
        "type": "RunRequested",
        "datacontenttype": "application/json",
        "data": odd.model_dump(mode="json"),
        "traceid": 12345,
        "traceparent": {"not": "a string"},
    }
    resp = httpx.post(
        f"{pub.dapr}/v1.0/publish/pubsub/{sub.topic}",
        json=cloud_event,
        headers={**pub.headers(), "content-type": "application/cloudevents+json"},
        timeout=10,
    )
    assert resp.status_code == 204, resp.text
    _publish(pub, sub.topic, RunRequested(run_id="after", agent_id="echo"))

    wait_for(lambda: len(sub.received()["received"]) == 2, 30, "both events delivered")
    ids = [e["data"]["run_id"] for e in sub.received()["received"]]
    assert sorted(ids) == ["after", "odd-trace"]
