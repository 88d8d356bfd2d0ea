"""The watchdog's view of what should have a consumer: every subscription in components/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentia import names
from agentia_tools.runtime import broker_queues, watchdog
from agentia_tools.runtime.watchdog import (
    AppEvents,
    QueueState,
    Subscription,
    stalled,
    subscriptions,
)


def test_every_scoped_subscription_becomes_a_queue() -> None:
    subs = subscriptions()
    assert Subscription(names.AGENT_RUNNER, names.TOPIC_RUNS_REQUESTED) in subs
    assert Subscription(names.GATEWAY, names.TOPIC_RUNS_EVENTS) in subs
    assert Subscription(names.AGENT_RUNNER, names.TOPIC_RUNS_REQUESTED).queue == (
        f"{names.AGENT_RUNNER}-{names.TOPIC_RUNS_REQUESTED}"
    )


def test_other_kinds_and_unscoped_subscriptions_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "kind: Component\nmetadata: {name: x}\n---\n"
        "kind: Subscription\nspec: {topic: t1}\n---\n"
        "kind: Subscription\nspec: {topic: t2}\nscopes: [app-a, app-b]\n"
    )
    assert subscriptions(tmp_path) == [Subscription("app-a", "t2"), Subscription("app-b", "t2")]


@pytest.mark.parametrize(
    ("state", "before", "now", "expected"),
    [
        (QueueState(0, 0), None, None, True),  # no consumer at all
        (QueueState(1, 5), AppEvents(10, 0), AppEvents(10, 0), True),  # waiting, app idle
        (QueueState(1, 5), AppEvents(10, 0), AppEvents(12, 0), False),  # still delivering
        (QueueState(1, 5), AppEvents(10, 2), AppEvents(10, 3), False),  # app busy
        (QueueState(1, 0), AppEvents(10, 0), AppEvents(10, 0), False),  # nothing waiting
        (QueueState(1, 5), None, AppEvents(10, 0), False),  # first look
        (QueueState(1, 5), AppEvents(10, 0), None, False),  # app not answering
        (QueueState(1, 0, 16), AppEvents(10, 0), AppEvents(10, 0), True),  # held, not handed on
        (QueueState(1, 0, 16), AppEvents(10, 0), AppEvents(10, 3), False),  # being handled
        (QueueState(1, 0, 0), AppEvents(10, 0), AppEvents(10, 0), False),  # truly idle
    ],
)
def test_stalled(
    state: QueueState, before: AppEvents | None, now: AppEvents | None, expected: bool
) -> None:
    assert stalled(state, before, now) is expected


class FakeSupervisor:
    """Stands in for the supervisor's RPC: every process started long ago; records restarts."""

    def __init__(self) -> None:
        self.restarted: list[str] = []

    def stop(self, name: str) -> None:
        self.restarted.append(name)

    def start(self, name: str, wait: bool = True) -> None:
        pass


def test_held_messages_restart_the_sidecar_though_the_broker_is_asked_less_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Zombie consumers hold every message (none ready) and the app is handed nothing: the
    unacked count, asked at most every 15 s, must carry over the checks in between."""
    sub = Subscription(names.AGENT_RUNNER, names.TOPIC_RUNS_REQUESTED)
    asked: list[int] = []

    def unacked(exact: bool = False) -> dict[str, int]:
        asked.append(1)
        return {sub.queue: 100}

    procs = {names.AGENT_RUNNER: 0.0, f"{names.AGENT_RUNNER}-dapr": 0.0}  # started long ago
    monkeypatch.setattr(watchdog, "running_since", lambda sup: procs)
    monkeypatch.setattr(watchdog, "queue_states", lambda url, qs: {sub.queue: QueueState(8, 0)})
    monkeypatch.setattr(watchdog, "app_events", lambda app, token: AppEvents(286, 0, 600.0))
    monkeypatch.setattr(watchdog, "unacked_counts", unacked)
    sup: Any = FakeSupervisor()
    memory = watchdog.Memory()
    # Checks in quick succession: the broker is asked once, well within UNACKED_EVERY_S.
    for _ in range(watchdog.STRIKES + 1):  # the first look only records the app's count
        watchdog.check_once(sup, "amqp://", "token", [sub], memory)
    assert sup.restarted == [f"{names.AGENT_RUNNER}-dapr"]
    assert len(asked) < watchdog.STRIKES  # the broker was not asked at every check


def test_the_cluster_is_asked_for_split_nodes_often_only_after_a_node_returns() -> None:
    watch = watchdog.SplitWatch()
    up = {"rq1": True, "rq2": True, "rq3": True}
    frozen = {**up, "rq1": False}
    assert watch.due(1000.0, up)  # once at start
    assert not watch.due(1020.0, up)  # all serving: only the backstop
    assert not watch.due(1030.0, frozen)  # a node out is not split yet
    assert watch.due(1040.0, up)  # back: asked now
    assert not watch.due(1050.0, up)  # not more often than HEAL_EVERY_S
    assert watch.due(1056.0, up)  # and again while watching
    assert watch.due(1040.0 + watchdog.HEAL_AFTER_RETURN_S - 1, up)
    assert not watch.due(1040.0 + watchdog.HEAL_AFTER_RETURN_S + 20, up)  # watch over
    assert watch.due(1040.0 + watchdog.HEAL_AFTER_RETURN_S - 1 + watchdog.HEAL_BACKSTOP_S, up)


def test_a_cut_drain_is_looked_at_again_until_rabbitmqctl_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A drain cut short is handled once the broker says what is held: when rabbitmqctl
    gives no answer, the same cut is looked at again next round, not forgotten."""
    queue = names.drain_queue(names.TOPIC_RUNS_BATCH)
    answers: list[dict[str, int]] = [{}, {queue: 12}, {queue: 0}]
    monkeypatch.setattr(watchdog, "drains_cut_short", lambda token: 1)
    monkeypatch.setattr(watchdog, "queue_states", lambda url, qs: {queue: QueueState(0, 18)})
    monkeypatch.setattr(watchdog, "unacked_counts", lambda exact=False: answers.pop(0))
    sup: Any = FakeSupervisor()
    memory = watchdog.Memory()
    assert watchdog.check_drains(sup, "amqp://", "token", memory) == []  # no answer
    restarted = watchdog.check_drains(sup, "amqp://", "token", memory)
    assert restarted == sup.restarted == [watchdog.sidecar_name(names.SCHEDULER)]
    assert watchdog.check_drains(sup, "amqp://", "token", memory) == []  # that cut is done
    assert len(answers) == 1  # and the broker was not asked about it again


def test_queue_depths_are_read_from_the_brokers_prometheus_text() -> None:
    text = "\n".join(
        [
            "# TYPE rabbitmq_detailed_queue_messages_unacked gauge",
            'rabbitmq_detailed_queue_messages_ready{vhost="/",queue="a-runs.requested"} 4',
            'rabbitmq_detailed_queue_messages_unacked{vhost="/",queue="a-runs.requested"} 16',
            'rabbitmq_detailed_queue_messages_unacked{vhost="/",queue="odd \\"q\\""} 2',
            'rabbitmq_detailed_queue_messages_unacked{vhost="other",queue="a-runs.requested"} 9',
            'rabbitmq_detailed_queue_messages_unacked_total{vhost="/",queue="x"} 7',
            "rabbitmq_identity_info 1",
        ]
    )
    metric = broker_queues.METRIC_OF["messages_unacknowledged"]
    assert broker_queues.parse_queue_metric(text, metric) == {
        "a-runs.requested": 16,
        'odd \\"q\\"': 2,
    }
