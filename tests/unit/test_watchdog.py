"""The watchdog's view of what should have a consumer: every subscription in components/."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentia import names
from agentia.runtime.watchdog import AppEvents, QueueState, Subscription, stalled, subscriptions


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
