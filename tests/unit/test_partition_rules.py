"""The partition's iptables rules and its seeded schedule (the real cut is tested in
tests/integration/test_partition.py)."""

from __future__ import annotations

import pytest

from agentia import names
from agentia_tools.chaos import injected, partition
from agentia_tools.chaos.partition import (
    CHAIN,
    Cut,
    PartitionError,
    peer_cuts,
    rules,
    schedule,
)
from agentia_tools.runtime import debian


def test_one_mark_rule_per_port_then_one_drop_rule() -> None:
    out = rules([Cut("agent-runner-dapr", (5672, 5432))], "both")
    assert len(out) == 3
    assert out[0][:4] == ["-t", "mangle", "-A", CHAIN]
    assert "agentia-chaos/agent-runner-dapr" in out[0] and "5672" in out[0]
    assert "5432" in out[1]
    assert out[2][-2:] == ["-j", "DROP"] and "--ctdir" not in out[2]
    assert "-t" not in out[2]  # the filter table


@pytest.mark.parametrize(("direction", "ctdir"), [("outbound", "ORIGINAL"), ("inbound", "REPLY")])
def test_a_one_way_partition_drops_one_direction(direction: str, ctdir: str) -> None:
    drop = rules([Cut("x", (1,))], direction)[-1]  # type: ignore[arg-type]
    assert drop[drop.index("--ctdir") + 1] == ctdir


def test_a_bad_direction_or_peer_is_refused_by_name() -> None:
    with pytest.raises(PartitionError, match="direction must be one of both"):
        rules([Cut("x", (1,))], "sideways")  # type: ignore[arg-type]
    with pytest.raises(PartitionError, match="peer must be one of"):
        peer_cuts(names.AGENT_RUNNER, "the-moon")
    with pytest.raises(PartitionError, match="'nope' is not a service"):
        peer_cuts("nope", "rabbitmq")


def test_the_app_peer_cuts_both_ways_between_an_app_and_its_sidecar() -> None:
    ports = names.PORTS[names.AGENT_RUNNER]
    cuts = peer_cuts(names.AGENT_RUNNER, "app")
    assert Cut(names.AGENT_RUNNER, (ports.dapr_http, ports.dapr_grpc)) in cuts
    assert Cut("agent-runner-dapr", (ports.app,)) in cuts
    plane = peer_cuts(names.AGENT_RUNNER, "control-plane")
    assert plane == [Cut("agent-runner-dapr", (names.PLACEMENT_PORT, names.SCHEDULER_PORT))]


def test_a_schedule_is_the_same_for_a_seed_and_fits_its_duration() -> None:
    one = schedule(7, 120, (10, 20), (10, 20))
    assert one == schedule(7, 120, (10, 20), (10, 20))
    assert one != schedule(8, 120, (10, 20), (10, 20))
    assert 2 <= len(one) <= 6
    end = 0.0
    for window in one:
        assert window.at_s >= end + 10 - 0.01 and 10 <= window.on_s <= 20
        end = window.at_s + window.on_s
    assert end <= 120
    assert schedule(1, 5, (10, 20), (10, 20)) == []


def test_a_link_open_before_the_cut_is_marked_by_its_ports_from_either_end() -> None:
    out = rules([Cut("x", (5672,))], "both", [(40000, 5672)])
    assert out[0][8:12] == ["--sport", "40000", "--dport", "5672"]
    assert out[1][8:12] == ["--sport", "5672", "--dport", "40000"]
    assert len(out) == 4  # two for the open link, one for new links, the drop


def test_without_iptables_and_without_root_the_error_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(debian.shutil, "which", lambda _name: None)
    monkeypatch.setattr(debian.os, "geteuid", lambda: 1000)
    with pytest.raises(PartitionError, match=r"sudo apt-get install .*iptables"):
        partition.ensure_iptables()
    partition.heal()  # nothing was cut without iptables: healing is a no-op, not an error


def test_each_window_of_a_schedule_counts_as_one_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    cuts: list[str] = []
    monkeypatch.setattr(partition, "cut", lambda c, d, p: cuts.append(d))
    monkeypatch.setattr(partition, "heal", lambda: None)
    before = injected.total()
    windows = [partition.Window(0.0, 0.01), partition.Window(0.02, 0.01), partition.Window(0.04, 0)]
    partition.run_schedule(windows, [Cut("x", (1,))], "both", lambda _n: 1)
    assert cuts == ["both"] * 3 and injected.total() - before == 3
