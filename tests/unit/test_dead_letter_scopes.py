"""The dead-letter fault narrows one app's publishing scope and nothing else."""

from __future__ import annotations

from agentia_tools.chaos.dead_letter import narrowed_scopes


def test_only_that_apps_topic_is_taken_away() -> None:
    scopes = "gateway=runs.requested,x.dlq;agent-runner=runs.events,runs.requested.dlq,a"
    got = narrowed_scopes(scopes, "agent-runner", "runs.requested.dlq")
    assert got == "gateway=runs.requested,x.dlq;agent-runner=runs.events,a"
    assert narrowed_scopes(scopes, "memory", "runs.requested.dlq") == scopes
