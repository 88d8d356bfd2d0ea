"""The cluster broker profile's pure parts: node names and ports, the files each node is
given, the quorum copy of the resources, the drain's queue type, the front's frame check
and the partition's cuts. The cluster itself runs in tests/integration/test_rabbitmq_cluster.py."""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

import pytest
import yaml

from agentia import names
from agentia_scheduler.drain import stream
from agentia_tools.chaos import broker_cluster
from agentia_tools.runtime import broker_front, infra_servers, mesh, orchestrate
from agentia_tools.runtime import rabbitmq_cluster as rc


def test_nodes_listen_beside_the_front_with_names_unique_per_port() -> None:
    assert [rc.node_port(5672, n) for n in rc.NODES] == [5681, 5682, 5683]
    assert rc.nodename("rq2", 5672) == "agentia-rq2@localhost"
    assert rc.nodename("rq2", 5772) == "agentia-rq2-5772@localhost"
    assert rc.node_of("agentia-rq2-5772@localhost", 5772) == "rq2"
    assert rc.node_of("agentia-rq2-5772@localhost", 5672) is None
    assert rc.node_of("rabbit@elsewhere", 5672) is None
    env = rc.node_env(Path("/x"), "rq3", 5672, "127.0.0.1")
    assert env["RABBITMQ_NODE_PORT"] == "5683" and env["RABBITMQ_DIST_PORT"] == "25683"
    assert env["RABBITMQ_NODENAME"] == "agentia-rq3@localhost"
    assert env["HOME"] == "/x/data/rabbitmq-cluster/rq3/home"


def test_each_node_knows_its_peers_and_pauses_in_a_minority() -> None:
    conf = rc.render_conf(Path("/x"), "rq2", 5672, "127.0.0.1", "secret-pw")
    assert "listeners.tcp.default = 127.0.0.1:5682" in conf
    for i, node in enumerate(rc.NODES, 1):
        assert f"cluster_formation.classic_config.nodes.{i} = agentia-{node}@localhost" in conf
    assert "cluster_partition_handling = pause_minority" in conf
    assert "net_ticktime, 10" in rc.render_advanced_config()


def test_drain_queues_are_declared_quorum_only_on_the_cluster() -> None:
    def drain_args(text: str) -> list[dict[str, str]]:
        return [q["arguments"] for q in json.loads(text)["queues"]]

    assert drain_args(infra_servers.render_rabbitmq_definitions("pw")) == [{}] * len(
        names.DRAINABLE_TOPICS
    )
    quorum = drain_args(infra_servers.render_rabbitmq_definitions("pw", "quorum"))
    assert quorum and all(a == {"x-queue-type": "quorum"} for a in quorum)


def test_the_quorum_copy_asks_for_quorum_queues_on_every_subscription(tmp_path: Path) -> None:
    out = rc.quorum_resources(tmp_path, mesh.components_dir())
    subs = list(yaml.safe_load_all((out / "subscriptions.yaml").read_text()))
    assert subs and all(s["spec"]["metadata"]["queueType"] == "quorum" for s in subs)
    original = list(yaml.safe_load_all((mesh.components_dir() / "subscriptions.yaml").read_text()))
    assert [s["metadata"]["name"] for s in subs] == [s["metadata"]["name"] for s in original]
    # Components are copied as they are; a file gone from components/ goes from the copy.
    pubsub = (mesh.components_dir() / "pubsub.yaml").read_text()
    assert (out / "pubsub.yaml").read_text() == pubsub
    (out / "stale.yaml").write_text("kind: Component\n")
    rc.quorum_resources(tmp_path, mesh.components_dir())
    assert not (out / "stale.yaml").exists()


def test_sidecars_get_the_quorum_copy_unless_an_experiment_overrides(tmp_path: Path) -> None:
    assert mesh.sidecar_resources(tmp_path, names.GATEWAY) is None
    (quorum,) = mesh.sidecar_resources(tmp_path, names.GATEWAY, "cluster") or []
    assert quorum.name == "resources-quorum"
    mesh.resources_override(tmp_path, names.GATEWAY).mkdir(parents=True)
    override = mesh.sidecar_resources(tmp_path, names.GATEWAY, "cluster")
    assert override == [mesh.resources_override(tmp_path, names.GATEWAY)]


def test_the_profile_comes_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(rc.PROFILE_ENV, raising=False)
    assert rc.profile() == "single"
    monkeypatch.setenv(rc.PROFILE_ENV, "cluster")
    assert rc.profile() == "cluster" and rc.profile("single") == "single"
    with pytest.raises(ValueError, match="one of: single, cluster"):
        rc.profile("mirrored")
    assert rc.queue_type("cluster") == "quorum" and rc.queue_type("single") == "classic"


def test_a_drain_asks_for_the_queue_type_the_broker_declared() -> None:
    def metadata(queue_type: str) -> dict[str, str]:
        initial = stream("127.0.0.1:1", None, "runs.batch", queue_type)._initial.initial_request
        return dict(initial.metadata)

    assert metadata("classic") == {"queueName": names.drain_queue("runs.batch")}
    assert metadata("quorum")["queueType"] == "quorum"


def test_the_front_takes_only_connection_start_as_an_answer() -> None:
    start = struct.pack("!BHIHH", 1, 0, 200, 10, 10)
    assert broker_front.is_connection_start(start)
    assert not broker_front.is_connection_start(struct.pack("!BHIHH", 1, 0, 200, 10, 50))
    assert not broker_front.is_connection_start(b"AMQP\x00\x00\x09\x01")  # a version refusal
    assert broker_front.parse_address("127.0.0.1:5681") == ("127.0.0.1", 5681)
    with pytest.raises(argparse.ArgumentTypeError):
        broker_front.parse_address("5681")


def test_a_minority_partition_cuts_every_link_from_either_end() -> None:
    cuts = {c.process: c.ports for c in broker_cluster.minority_cuts("rq2")}
    assert cuts == {
        "rabbitmq-rq2": (25681, 25683),
        "rabbitmq-rq1": (25682,),
        "rabbitmq-rq3": (25682,),
    }


def test_the_quorum_copy_is_not_touched_when_nothing_changed(tmp_path: Path) -> None:
    """Sidecars watch the folder: a rewrite of the same text would reload (restart) them."""
    out = rc.quorum_resources(tmp_path, mesh.components_dir())
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.yaml")}
    rc.quorum_resources(tmp_path, mesh.components_dir())
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.yaml")} == before


def test_the_cluster_profile_is_refused_beside_an_external_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTIA_RABBITMQ_URL", "amqp://someone:pw@127.0.0.1:5999/")
    with pytest.raises(orchestrate.MeshError, match="unset AGENTIA_RABBITMQ_URL"):
        orchestrate.plan(tmp_path, print, broker="cluster")


def test_a_vhost_stopped_on_a_running_node_is_named_and_a_down_node_is_not() -> None:
    """RabbitMQ 3.10 starts a vhost declared while the cluster forms only on the nodes in
    it then: settle restarts it where ``list_vhosts cluster_state`` says it is stopped."""
    rows = [
        {
            "name": "/",
            "cluster_state": {
                rc.nodename("rq1", 5772): "running",
                rc.nodename("rq2", 5772): "nodedown",
                rc.nodename("rq3", 5772): "stopped",
                "someone-else@localhost": "stopped",
            },
        }
    ]
    assert rc.stopped_vhosts(rows, 5772) == [("/", "rq3")]
    assert rc.stopped_vhosts(None, 5772) == []


def test_a_queue_lacking_a_member_names_that_node() -> None:
    want = [rc.nodename(n, 5672) for n in rc.NODES]
    queues = [{"name": "a", "members": want}, {"name": "b", "members": want[:2]}]
    assert rc.lacking_members(queues, want) == [want[2]]
    assert rc.lacking_members([{"name": "a", "members": want}], want) == []
