"""The names module, the events and the component YAML files agree with each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agentia import names
from agentia.dapr import cloudevent
from agentia.events import (
    EVENT_TYPES,
    KIND_DATA,
    RUN_EVENT_CLASSES,
    Event,
    Kind,
    RunEvent,
    RunRequested,
    ToolResult,
)
from agentia.paths import repo_root

COMPONENTS = repo_root() / "components"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _all_docs() -> list[dict[str, Any]]:
    return [d for p in sorted(COMPONENTS.rglob("*.yaml")) for d in _docs(p)]


def test_component_names_are_the_constants() -> None:
    components = {d["metadata"]["name"] for d in _all_docs() if d["kind"] == "Component"}
    assert components == {
        names.PUBSUB,
        names.PUBSUB_DRAIN,
        names.STATE_STORE,
        names.STATE_STORE_CREATE,
        names.CACHE_STORE,
        names.CACHE_STORE_CREATE,
        names.LOCK_STORE,
        names.SECRET_STORE,
        names.RATE_LIMIT_BINDING,
    }


def test_every_subscription_has_a_dead_letter_topic_with_a_subscriber() -> None:
    subs = [d for d in _all_docs() if d["kind"] == "Subscription"]
    assert subs
    topics = {s["spec"]["topic"] for s in subs}
    for sub in subs:
        spec = sub["spec"]
        assert spec["pubsubname"] == names.PUBSUB
        if spec["topic"].endswith(names.DEAD_LETTER_SUFFIX):
            assert spec["topic"].removesuffix(names.DEAD_LETTER_SUFFIX) in names.TOPICS
            continue
        assert spec["topic"] in names.TOPICS
        assert spec["deadLetterTopic"] == names.dead_letter(spec["topic"])
        assert spec["deadLetterTopic"] in topics, "nobody keeps this topic's dead letters"
        assert set(sub["scopes"]) <= set(names.APP_IDS)


def test_secrets_come_from_the_secret_store_never_inline() -> None:
    for doc in _all_docs():
        if doc["kind"] != "Component" or doc["metadata"]["name"] == names.SECRET_STORE:
            continue
        for item in doc["spec"]["metadata"]:
            if item["name"] in {"connectionString", "redisPassword", "redisHost"}:
                assert "secretKeyRef" in item, f"{doc['metadata']['name']}.{item['name']} inline"
        assert doc["auth"]["secretStore"] == names.SECRET_STORE


def test_ports_are_unique() -> None:
    ports = [
        names.PLACEMENT_PORT,
        names.SCHEDULER_PORT,
        names.PLACEMENT_HEALTHZ_PORT,
        names.SCHEDULER_HEALTHZ_PORT,
        names.SCHEDULER_ETCD_CLIENT_PORT,
        names.SCHEDULER_ETCD_PEER_PORT,
        names.PLACEMENT_RAFT_PORT,
    ]
    for p in names.PORTS.values():
        ports += [p.app, p.dapr_http, p.dapr_grpc, p.dapr_internal_grpc, p.dapr_metrics]
    assert len(ports) == len(set(ports))


def test_events_are_documented_and_versioned() -> None:
    for cls in EVENT_TYPES.values():
        assert cls.__doc__
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"
        assert cls.model_fields["schema_version"].default == Event.SCHEMA_VERSION


def test_cloudevent_type_is_class_name_and_id_is_event_id() -> None:
    event = RunRequested(run_id="r1", agent_id="a")
    ce = cloudevent(event, "gateway")
    assert ce["type"] == "RunRequested" and ce["id"] == event.event_id
    assert RunRequested.model_validate(ce["data"]) == event


def test_run_event_rejects_unknown_fields_and_bad_values() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError):
        RunEvent(run_id="r", kind="run.started", status="running", seq=0, extra=1)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        RunEvent(run_id="r", kind="run.started", status="exploded", seq=0)  # type: ignore[arg-type]


def test_dapr_multi_app_run_file_matches_the_ports() -> None:
    doc = yaml.safe_load((repo_root() / "dapr.yaml").read_text())
    apps = {a["appID"]: a for a in doc["apps"]}
    assert set(apps) == set(names.APP_IDS)
    for app_id, app in apps.items():
        ports = names.PORTS[app_id]
        assert app["appPort"] == ports.app
        assert app["daprHTTPPort"] == ports.dapr_http
        assert app["daprGRPCPort"] == ports.dapr_grpc
        assert str(ports.app) in app["command"]
    assert (repo_root() / doc["common"]["resourcesPath"]).is_dir()
    assert (repo_root() / doc["common"]["configFilePath"]).is_file()


def _scopes(name: str) -> dict[str, set[str]]:
    pubsub = next(
        d for d in _all_docs() if d["kind"] == "Component" and d["metadata"]["name"] == names.PUBSUB
    )
    raw = next(m["value"] for m in pubsub["spec"]["metadata"] if m["name"] == name)
    return {
        app: set(filter(None, topics.split(",")))
        for app, topics in (part.split("=", 1) for part in raw.split(";"))
    }


def test_topic_scopes_name_real_apps_and_topics() -> None:
    topics = set(names.TOPICS) | {f"{t}.dlq" for t in names.TOPICS}
    for name in ("publishingScopes", "subscriptionScopes"):
        for app, allowed in _scopes(name).items():
            assert app in {*names.PORTS, names.SCHEDULER_DRAIN}, f"{name}: unknown app '{app}'"
            assert allowed <= topics, f"{name}: unknown topics {allowed - topics}"


def test_every_subscription_is_within_its_apps_scope() -> None:
    allowed = _scopes("subscriptionScopes")
    for sub in (d for d in _all_docs() if d["kind"] == "Subscription"):
        for app in sub.get("scopes") or []:
            assert sub["spec"]["topic"] in allowed.get(app, {sub["spec"]["topic"]}), (app, sub)


def test_fixed_ports_are_below_the_ephemeral_range() -> None:
    """A port in Linux's ephemeral range can be taken as an outgoing connection's source
    port before its sidecar binds it (seen once: daprd failed to start on 50104)."""
    fixed = [p for ports in names.PORTS.values() for p in vars(ports).values()]
    fixed += [v for k, v in vars(names).items() if k.endswith("_PORT") and isinstance(v, int)]
    assert fixed and all(0 < p < 32768 for p in fixed), sorted(p for p in fixed if p >= 32768)


def test_app_health_probe_settings_are_ones_daprd_accepts() -> None:
    # daprd exits at start-up otherwise: "'health-probe-timeout' must be smaller than ...".
    assert names.APP_HEALTH_PROBE_TIMEOUT_MS < names.APP_HEALTH_PROBE_INTERVAL_S * 1000
    assert names.APP_HEALTH_THRESHOLD >= 1


def test_each_run_event_kind_has_its_class_its_cloudevent_type_and_its_data() -> None:
    assert {cls.model_fields["kind"].default for cls in RUN_EVENT_CLASSES} == set(Kind)
    assert set(KIND_DATA) == set(Kind)
    event = RunEvent.of(
        run_id="r1", kind=Kind.TOOL_RESULT, status="running", seq=3, data={"output": 1}
    )
    assert isinstance(event, ToolResult) and event.thread_id is None
    assert cloudevent(event, "agent-runner")["type"] == "ToolResult"
    # A consumer may read it as the envelope, with data a dict, or as its kind.
    envelope = RunEvent.model_validate(event.model_dump(mode="json"))
    assert envelope.data == {"output": 1} and envelope.payload().model_dump()["output"] == 1


def test_a_run_event_whose_data_does_not_fit_its_kind_is_refused() -> None:
    import pydantic
    import pytest

    for kind, data in [
        (Kind.MESSAGE_DELTA, {"text": "a delta is called delta"}),
        (Kind.RUN_STARTED, {}),
        (Kind.TOOL_RESULT, {"output": 1, "extra": True}),
    ]:
        with pytest.raises(pydantic.ValidationError):
            RunEvent.of(run_id="r1", kind=kind, status="running", seq=0, data=data)


def test_the_gateways_internal_contract() -> None:
    from agentia.contracts import gateway as gateway_api

    assert gateway_api.budget_path("k1", "assistant") == "internal/budgets/k1?agent_id=assistant"
    assert gateway_api.budget_path("a/b") == "internal/budgets/a%2Fb"
    run = gateway_api.ScheduledRun(run_id="s1-1", agent_id="assistant", input="hi")
    assert run.model_dump(mode="json")["metadata"] == {}
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError):
        gateway_api.ScheduledRun(run_id="bad id", agent_id="assistant")
