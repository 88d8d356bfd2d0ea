"""The cluster broker profile on real RabbitMQ nodes (runtime/rabbitmq_cluster.py): three
nodes form one cluster behind the broker front, the drain queues are quorum queues on all
three, settle (and later the watchdog) restarts a vhost left down on a node, a publish the
cluster confirmed survives the SIGKILL of its queue's leader, and the front moves new
connections off a frozen node and closes the ones it held.

The cluster runs on its own ports (front 5772, nodes 5781-5783) under its own supervisor,
beside whatever mesh is up.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pika.exceptions
import pytest

from agentia import names
from agentia_tools.runtime import rabbitmq_cluster as rc
from agentia_tools.runtime import watchdog
from agentia_tools.runtime.infra_servers import server_root
from agentia_tools.runtime.supervisor import Supervisor

FRONT_PORT = 5772
HOST = "127.0.0.1"
PASSWORD = "cluster-test-" + uuid.uuid4().hex[:8]
QUEUE = "it-quorum"


@dataclass
class Cluster:
    home: Path
    root: Path
    sup: Supervisor

    def leader(self, queue: str) -> str:
        for row in rc.quorum_queues(self.root, FRONT_PORT, HOST):
            if row["name"] == queue:
                return str(row["leader"])
        raise AssertionError(f"no quorum queue {queue}")


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def connect() -> pika.BlockingConnection:
    params = pika.URLParameters(f"amqp://agentia:{PASSWORD}@{HOST}:{FRONT_PORT}/%2F")
    params.connection_attempts, params.retry_delay, params.socket_timeout = 1, 0, 2
    params.blocked_connection_timeout = 10
    return pika.BlockingConnection(params)


def connect_until(timeout: float) -> pika.BlockingConnection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect()
        except pika.exceptions.AMQPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def all_running(cluster: Cluster) -> bool:
    try:
        return len(rc.running_nodes(cluster.root, FRONT_PORT, HOST)) == 3
    except rc.ClusterError:
        return False


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="agentia-rq-cluster-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        root = server_root(home)
        specs = rc.node_specs(root, FRONT_PORT, HOST, PASSWORD)
        sup = Supervisor(home)
        sup.write(specs)
        sup.start_daemon()
        try:
            rc.start(sup, root, FRONT_PORT, HOST, print)
            rc.settle(root, FRONT_PORT, HOST, print, timeout=180)
            yield Cluster(home, root, sup)
        finally:
            for spec in specs:
                sup.stop(spec.name)
            sup.shutdown()


def test_three_nodes_form_one_cluster_with_quorum_drain_queues(cluster: Cluster) -> None:
    want = sorted(rc.nodename(n, FRONT_PORT) for n in rc.NODES)
    assert rc.running_nodes(cluster.root, FRONT_PORT, HOST) == want
    queues = {q["name"]: q for q in rc.quorum_queues(cluster.root, FRONT_PORT, HOST)}
    for topic in names.DRAINABLE_TOPICS:
        drain = queues[names.drain_queue(topic)]
        assert sorted(drain["members"]) == want
        assert drain["leader"] in want
    with connect() as conn:  # the front takes an AMQP login with the mesh's password
        assert conn.is_open


def node_login(node: str) -> bool:
    """An AMQP login straight to ``node`` (not through the front) opens its vhost."""
    url = f"amqp://agentia:{PASSWORD}@{HOST}:{rc.node_port(FRONT_PORT, node)}/%2F"
    params = pika.URLParameters(url)
    params.connection_attempts, params.retry_delay, params.socket_timeout = 1, 0, 2
    try:
        with pika.BlockingConnection(params) as conn:
            return bool(conn.is_open)
    except pika.exceptions.AMQPError:
        return False


def test_settle_restarts_a_vhost_left_down_on_a_node(cluster: Cluster) -> None:
    """RabbitMQ 3.10 starts a vhost declared while the cluster forms only on the nodes in
    it at that moment; a node joining later refuses every login ("vhost '/' is down"). The
    state is made here by stopping the vhost on rq3; settle must find and restart it."""
    stop = 'rabbit_vhost_sup_sup:stop_and_delete_vhost(<<"/">>).'
    proc = rc.ctl(cluster.root, FRONT_PORT, HOST, ["rabbitmqctl", "eval", stop], "rq3")
    assert proc.returncode == 0, proc.stderr
    assert not node_login("rq3"), "the vhost is down on rq3"
    seen: list[str] = []
    rc.settle(cluster.root, FRONT_PORT, HOST, seen.append, timeout=120)
    assert any("virtual host '/' down on rabbitmq-rq3" in line for line in seen), seen
    assert all(node_login(n) for n in rc.NODES), "every node takes a login again"


def test_the_watchdog_restarts_a_vhost_that_goes_down_while_the_mesh_runs(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Later, with the mesh running, a node whose vhost stopped still answers the front's
    probe but refuses every login: the watchdog's cluster check restarts the vhost there."""
    monkeypatch.setenv("AGENTIA_HOME", str(cluster.home))
    monkeypatch.setenv("AGENTIA_RABBITMQ_PORT", str(FRONT_PORT))
    stop = 'rabbit_vhost_sup_sup:stop_and_delete_vhost(<<"/">>).'
    proc = rc.ctl(cluster.root, FRONT_PORT, HOST, ["rabbitmqctl", "eval", stop], "rq2")
    assert proc.returncode == 0, proc.stderr
    assert not node_login("rq2"), "the vhost is down on rq2"
    assert watchdog.heal_split(cluster.sup) == [], "no node is split off: none restarted"
    assert all(node_login(n) for n in rc.NODES), "every node takes a login again"


def _publish(ids: list[str], confirmed: set[str], deadline: float) -> None:
    """Publish each id with publisher confirms through the front; a broken connection is
    reconnected and the unconfirmed message sent again (so the queue may hold it twice)."""
    pending = list(ids)
    while pending:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} publishes not confirmed in time")
        try:
            with connect() as conn:
                ch = conn.channel()
                ch.confirm_delivery()
                while pending:
                    ch.basic_publish(
                        "",
                        QUEUE,
                        pending[0].encode(),
                        pika.BasicProperties(delivery_mode=2),
                        mandatory=True,
                    )
                    confirmed.add(pending.pop(0))
        except pika.exceptions.AMQPError:
            time.sleep(0.5)


def test_a_confirmed_publish_survives_the_leaders_kill(cluster: Cluster) -> None:
    with connect() as conn:
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_purge(QUEUE)
    old = cluster.leader(QUEUE)
    ids = [f"m{i}" for i in range(300)]
    confirmed: set[str] = set()
    deadline = time.monotonic() + 180
    _publish(ids[:150], confirmed, deadline)
    old_node = rc.node_of(old, FRONT_PORT)
    assert old_node, f"{old} is not one of the cluster's nodes"
    cluster.sup.kill(rc.process_name(old_node), "KILL")
    _publish(ids[150:], confirmed, deadline)
    assert confirmed == set(ids)
    new = cluster.leader(QUEUE)
    assert new and new != old, "a new leader is elected while the old one restarts"

    received: list[str] = []
    with connect_until(60) as conn:
        ch = conn.channel()
        while True:
            method, _props, body = ch.basic_get(QUEUE, auto_ack=True)
            if method is None:
                break
            received.append(body.decode())
    assert set(received) == confirmed, "every confirmed publish is read back, none lost"
    wait_for(lambda: all_running(cluster), 120, "the killed node back in the cluster")


def test_the_front_moves_off_a_frozen_node(cluster: Cluster) -> None:
    wait_for(lambda: all_running(cluster), 120, "three nodes running")
    held = connect()  # through the front to rq1, the first node that is in
    frozen = rc.process_name(rc.NODES[0])
    cluster.sup.kill(frozen, "STOP")
    try:
        started = time.monotonic()

        def closed() -> bool:
            try:
                held.process_data_events(time_limit=0.2)
            except pika.exceptions.AMQPError:
                return True
            return not held.is_open

        wait_for(closed, 15, "the front closes the connection it held to the frozen node")
        took = time.monotonic() - started
        with connect_until(10) as conn:  # a frozen node cannot finish a handshake: another did
            assert conn.is_open
        assert took < 15
    finally:
        cluster.sup.kill(frozen, "CONT")
    wait_for(lambda: all_running(cluster), 180, "the thawed node back in the cluster")
