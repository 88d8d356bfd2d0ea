"""The short chaos pass of the test suite: each experiment run by Chaos Toolkit itself
against the real local mesh, under a steady load of agent runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentia.paths import agentia_home
from agentia_tools.chaos import runner
from agentia_tools.runtime import orchestrate
from agentia_tools.runtime.supervisor import Supervisor

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.fixture(scope="module")
def mesh() -> Iterator[None]:
    home = agentia_home()
    was_running = Supervisor(home).running()
    orchestrate.up(home, lambda m: print(f"[mesh] {m}", flush=True))
    yield
    if not was_running:
        orchestrate.down(home, lambda m: None)


def test_experiments_are_valid_chaos_toolkit_documents() -> None:
    for exp in runner.experiments():
        import json

        for variant in exp.variants.values():
            doc = json.loads(variant.path.read_text())
            assert {"title", "description", "steady-state-hypothesis", "method", "rollbacks"} <= (
                set(doc)
            )
            assert variant.target in doc["tags"], variant.path


# The short pass: experiments tagged "ci". `agentia chaos run all` runs every one.
@pytest.mark.parametrize("name", [e.name for e in runner.experiments() if "ci" in e.tags])
def test_experiment_loses_nothing_and_duplicates_nothing(name: str, mesh: None) -> None:
    report = runner.run(name)
    assert report["accepted"] == report["sent"] > 0, report
    assert report["lost"] == 0 and report["duplicated"] == 0, report
    assert report["completed"] == report["accepted"], report
    assert report["verdict"] == "pass", report


def test_unknown_experiment_and_target_are_refused() -> None:
    with pytest.raises(runner.ChaosError, match="unknown experiment"):
        runner.run("no-such-experiment")
    with pytest.raises(runner.ChaosError, match="unknown target 'mars'"):
        runner.run("kill-runner", target="mars")
