"""The mesh's watchdog: restarts a sidecar whose RabbitMQ subscriptions have died.

Dapr 1.18's RabbitMQ subscriber can stall after a broker restart while the sidecar stays
healthy: two reconnects race ("stale reconnect attempt", then "unexpected command received")
and the subscriber either gives up, leaving its queue with no consumer, or keeps a consumer
whose prefetched messages it never hands to the app. Seen from outside, every subscribed queue
(``{app id}-{topic}``, from ``components/subscriptions.yaml``) should have a consumer, and
messages should not wait while the app sits idle and is handed nothing. After a few checks in
a row that say otherwise, the watchdog restarts that sidecar, which subscribes again; the
broker hands the unacknowledged messages to the new consumer. It runs under the mesh's
supervisor:

    python -m agentia_tools.runtime.watchdog
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pika
import yaml
from prometheus_client import Counter, Gauge, start_http_server

from agentia import names
from agentia.logging import setup_logging
from agentia.paths import agentia_home
from agentia_tools.runtime import broker_front, broker_queues, rabbitmq_cluster
from agentia_tools.runtime.infra_config import InfraSettings, load_or_create_credentials
from agentia_tools.runtime.infra_servers import server_root
from agentia_tools.runtime.mesh import components_dir, sidecar_name
from agentia_tools.runtime.secrets_file import ensure_tokens
from agentia_tools.runtime.supervisor import Supervisor, SupervisorError

log = logging.getLogger("agentia.watchdog")
QUEUE_READY = Gauge(
    "agentia_queue_ready_messages",
    "Messages waiting in a subscribed queue, not yet handed to a consumer (queue lag).",
    ["queue"],
)
QUEUE_CONSUMERS = Gauge("agentia_queue_consumers", "Consumers of a subscribed queue.", ["queue"])
RESTARTS = Counter(
    "agentia_watchdog_restarts_total", "Sidecars the watchdog restarted.", ["sidecar"]
)
INTERVAL_S = 5.0
STRIKES = 3  # checks in a row with no consumer before a restart
GRACE_S = 30.0  # a sidecar that started less than this ago is still subscribing
UNACKED_EVERY_S = 15.0  # at most this often ask the broker for unacknowledged counts
TELL_EVERY_S = 60.0
HEAL_EVERY_S = 15.0  # at most this often the cluster is asked for nodes split off
HEAL_AFTER_RETURN_S = 120.0  # asked that often for this long after a node serves again
HEAL_BACKSTOP_S = 300.0  # and otherwise this often


@dataclass(frozen=True)
class Subscription:
    app_id: str
    topic: str

    @property
    def queue(self) -> str:
        """Dapr's RabbitMQ component names the queue ``{consumerID}-{topic}``; the
        consumer id is the app id unless a subscription sets another."""
        return f"{self.app_id}-{self.topic}"


def subscriptions(folder: Path | None = None) -> list[Subscription]:
    """Every (app, topic) the components folder subscribes."""
    found = []
    for path in sorted((folder or components_dir()).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "Subscription":
                continue
            for app_id in doc.get("scopes") or []:
                found.append(Subscription(app_id, doc["spec"]["topic"]))
    return found


@dataclass(frozen=True)
class QueueState:
    consumers: int
    ready: int  # messages waiting that the broker has not handed to any consumer
    unacked: int | None = None  # handed to a consumer, not yet acknowledged (when known)


def queue_states(url: str, queues: list[str]) -> dict[str, QueueState]:
    """Consumers and ready messages per queue (passive declares: nothing is created);
    queues not declared yet (their sidecar never subscribed) are left out."""
    params = pika.URLParameters(url)
    params.connection_attempts, params.socket_timeout = 1, 2
    states: dict[str, QueueState] = {}
    with pika.BlockingConnection(params) as conn:
        for queue in queues:
            channel = conn.channel()
            try:
                ok = channel.queue_declare(queue=queue, passive=True)
                states[queue] = QueueState(ok.method.consumer_count, ok.method.message_count)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                continue
    return states


@functools.cache
def http() -> httpx.Client:
    """One HTTP client for the watchdog's life: ``httpx.get`` builds a client, and with it
    a TLS context, per call; a call a second made the process grow by about 11 MiB."""
    return httpx.Client(timeout=2)


@dataclass(frozen=True)
class AppEvents:
    seen: int
    in_flight: int
    uptime_s: float = float("inf")


def app_events(app_id: str, app_token: str) -> AppEvents | None:
    """How many events the app has been handed, and is handling now (None: no answer)."""
    url = f"http://127.0.0.1:{names.PORTS[app_id].app}/internal/info"
    try:
        body = http().get(url, headers={"dapr-api-token": app_token}).json()
        return AppEvents(
            int(body["events_seen"]), int(body["events_in_flight"]), float(body["uptime_s"])
        )
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def idle(before: AppEvents | None, now: AppEvents | None) -> bool:
    """The app handles no event and was handed none since the last check."""
    return before is not None and now is not None and now.in_flight == 0 and now.seen == before.seen


def stalled(sub_state: QueueState, before: AppEvents | None, now: AppEvents | None) -> bool:
    """A subscription is stalled when its queue has no consumer, or when messages wait,
    ready or held unacknowledged by the sidecar, while the app is idle and was handed
    nothing since the last check: the sidecar holds a consumer but stopped delivering."""
    if sub_state.consumers == 0:
        return True
    waiting = sub_state.ready + (sub_state.unacked or 0)
    return waiting > 0 and idle(before, now)


def unacked_counts(exact: bool = False) -> dict[str, int]:
    """Unacknowledged messages per queue (empty when the broker cannot be asked); ``exact``:
    as of now, not as of the broker's last metrics refresh (a CLI call)."""
    return broker_queues.per_queue("messages_unacknowledged", exact)


def stray_queues(subs: list[Subscription]) -> dict[str, int]:
    """Queues on the broker that no subscription of the mesh reads, with their messages:
    left by an app that subscribed once (a renamed app, a test's probe). Dapr declares them
    durable and bound, so each keeps a copy of every later event on its topic for good,
    and the broker's work per event grows with their number."""
    known = {s.queue for s in subs} | {names.drain_queue(t) for t in names.DRAINABLE_TOPICS}
    held = broker_queues.per_queue("messages", exact=True)
    return {q: n for q, n in held.items() if q not in known}


def running_since(sup: Supervisor) -> dict[str, float]:
    """Process name -> when it started, for the processes that are RUNNING."""
    infos: list[dict[str, Any]] = sup.rpc().supervisor.getAllProcessInfo()
    return {i["name"]: float(i["start"]) for i in infos if i["statename"] == "RUNNING"}


@dataclass
class Memory:
    """What the watchdog carries from one check to the next."""

    strikes: dict[str, int] = field(default_factory=dict)
    events: dict[str, AppEvents | None] = field(default_factory=dict)
    unacked_at: float = 0.0  # when the broker was last asked
    unacked: dict[str, int] = field(default_factory=dict)  # what it said then
    drains_cut: int = 0  # the scheduler's count of drains that ended before the queue did
    told: dict[str, float] = field(default_factory=dict)  # when a hold-off was last logged

    def tell(self, what: str, **extra: Any) -> None:
        """Log why the watchdog holds off, at most once a minute per subject: the record
        that explains a stall it did not act on."""
        now = time.monotonic()
        if now - self.told.get(what, -TELL_EVERY_S) >= TELL_EVERY_S:
            self.told[what] = now
            log.info(what, extra=extra)


def check_once(
    sup: Supervisor, url: str, app_token: str, subs: list[Subscription], memory: Memory
) -> list[str]:
    """One round; returns the sidecars it restarted."""
    since = running_since(sup)
    now = time.time()
    watched = [
        s
        for s in subs
        if s.app_id in since
        and sidecar_name(s.app_id) in since
        and now - since[sidecar_name(s.app_id)] > GRACE_S
    ]
    if not watched:
        memory.strikes.clear()
        return []
    try:
        states = queue_states(url, [s.queue for s in watched])
    except pika.exceptions.AMQPError as exc:
        memory.strikes.clear()  # the broker itself is down: nothing a sidecar restart would fix
        memory.tell("broker not answering: holding off", why=type(exc).__name__)
        return []
    for queue, found in states.items():
        QUEUE_READY.labels(queue).set(found.ready)
        QUEUE_CONSUMERS.labels(queue).set(found.consumers)
    events = {a: app_events(a, app_token) for a in {s.app_id for s in watched}}
    # A consumer may hold every remaining message unacknowledged, so nothing is "ready":
    # while a subscriber sits idle with a consumer, ask the broker for its unacked count
    # (throttled: on the cluster profile it costs a CLI call).
    quiet = [
        s
        for s in watched
        if s.queue in states
        and states[s.queue].consumers > 0
        and states[s.queue].ready == 0
        and idle(memory.events.get(s.app_id), events[s.app_id])
    ]
    # Between two asks the last answer stands: a check that forgot it would see nothing
    # waiting and reset the strikes, so a stall seen only as held messages (a reconnect race
    # leaves zombie consumers holding their prefetch) would never reach STRIKES.
    if quiet and now - memory.unacked_at > UNACKED_EVERY_S:
        memory.unacked_at = now
        memory.unacked = unacked_counts()
    for s in quiet:
        if s.queue in memory.unacked:
            held = memory.unacked[s.queue]
            states[s.queue] = QueueState(states[s.queue].consumers, 0, held)
    restarted = []
    for sub in watched:
        state = states.get(sub.queue)
        app = events[sub.app_id]
        # An app that does not answer, or has just started, has no subscriptions on purpose:
        # its sidecar drops them while the app is unhealthy and takes them again after.
        settling = app is None or app.uptime_s < GRACE_S
        if settling or state is None or not stalled(state, memory.events.get(sub.app_id), app):
            memory.strikes.pop(sub.queue, None)
            if state is not None and (state.consumers == 0 or state.ready > 0):
                memory.tell(
                    f"{sub.queue}: messages wait but the app is busy or settling: holding off",
                    consumers=state.consumers,
                    ready=state.ready,
                    app=None if app is None else asdict(app),
                )
            continue
        memory.strikes[sub.queue] = memory.strikes.get(sub.queue, 0) + 1
        name = sidecar_name(sub.app_id)
        if memory.strikes[sub.queue] >= STRIKES and name not in restarted:
            log.warning(
                "subscription stalled: restarting the sidecar",
                extra={
                    "queue": sub.queue,
                    "sidecar": name,
                    "consumers": state.consumers,
                    "ready": state.ready,
                    "unacked": state.unacked,
                    "checks": memory.strikes[sub.queue],
                },
            )
            sup.stop(name)
            sup.start(name, wait=False)
            RESTARTS.labels(name).inc()
            restarted.append(name)
            for other in [s for s in subs if s.app_id == sub.app_id]:
                memory.strikes.pop(other.queue, None)
    memory.events = events
    return restarted


def drains_cut_short(app_token: str) -> int | None:
    url = f"http://127.0.0.1:{names.PORTS[names.SCHEDULER].app}/internal/info"
    try:
        body = http().get(url, headers={"dapr-api-token": app_token}).json()
        return int(body["drains_cut_short"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def check_drains(sup: Supervisor, url: str, app_token: str, memory: Memory) -> list[str]:
    """A drain that stopped before its queue was empty (time limit, error) may leave events
    its sidecar holds unacknowledged: Dapr 1.18 hands a stream a prefetch window and, when
    the stream closes, does not always give back what was not answered. When the scheduler counts
    a new such drain and no drain is running, ask the broker; if it holds some, restart the
    scheduler's sidecar, whose closing connection hands them back to the queue."""
    cut = drains_cut_short(app_token)
    if cut is None or cut <= memory.drains_cut:
        if cut is not None:
            memory.drains_cut = cut  # the scheduler restarted: its count starts again
        return []
    queues = [names.drain_queue(t) for t in names.DRAINABLE_TOPICS]
    try:
        states = queue_states(url, queues)
    except pika.exceptions.AMQPError:
        return []
    if any(s.consumers > 0 for s in states.values()):
        return []  # a drain is running: look again once it ends
    # Asked once per cut drain, right after it: a number a few seconds old could still say
    # "none held" from before the drain and the cut would be forgotten.
    counts = unacked_counts(exact=True)
    if any(q not in counts for q in states):
        return []  # rabbitmqctl gave no answer: ask again next round
    memory.drains_cut = cut
    held = {q: counts[q] for q in states if counts[q] > 0}
    if not held:
        return []
    name = sidecar_name(names.SCHEDULER)
    log.warning("drain left events held: restarting the sidecar", extra={"held": held})
    sup.stop(name)
    sup.start(name, wait=False)
    RESTARTS.labels(name).inc()
    return [name]


@dataclass
class SplitWatch:
    """When to ask the cluster broker for split nodes. Asking costs a CLI call per node
    (an Erlang VM each, about a second of CPU), and a node can only come back split after
    it stopped serving (frozen, paused, cut off): so the cluster is asked often only for a
    while after a node that did not answer AMQP answers again, and rarely otherwise."""

    serving: dict[str, bool] = field(default_factory=dict)
    asked_at: float = float("-inf")
    watch_until: float = float("-inf")

    def due(self, now: float, serving: dict[str, bool]) -> bool:
        if any(ok and self.serving.get(node) is False for node, ok in serving.items()):
            self.watch_until = now + HEAL_AFTER_RETURN_S
        self.serving = serving
        since = now - self.asked_at
        if since >= HEAL_BACKSTOP_S or (since >= HEAL_EVERY_S and now < self.watch_until):
            self.asked_at = now
            return True
        return False


def nodes_serving() -> dict[str, bool]:
    """Each cluster node's answer to the AMQP protocol header (a cheap probe)."""
    settings = InfraSettings.from_env()
    return {
        node: broker_front.answers_amqp(
            settings.host, rabbitmq_cluster.node_port(settings.rabbitmq_port, node)
        )
        for node in rabbitmq_cluster.NODES
    }


def heal_split(sup: Supervisor) -> list[str]:
    """On the cluster broker: restart a node the majority counts out while it still serves
    (runtime/rabbitmq_cluster.split_off); it joins the majority again as it boots. And
    restart a virtual host a serving node does not run: that node answers the front's probe
    but refuses every login ("vhost '/' is down"), so the front would keep sending it
    connections."""
    settings = InfraSettings.from_env()
    root = server_root(agentia_home())
    try:
        rabbitmq_cluster.restart_stopped_vhosts(
            root, settings.rabbitmq_port, settings.host, lambda m: log.warning(m)
        )
    except (rabbitmq_cluster.ClusterError, ValueError, subprocess.SubprocessError) as exc:
        log.info("cluster not answering: vhosts not checked", extra={"why": str(exc)[:300]})
    restarted = []
    for node in rabbitmq_cluster.split_off(root, settings.rabbitmq_port, settings.host):
        name = rabbitmq_cluster.process_name(node)
        log.warning("broker node split from the cluster: restarting it", extra={"node": name})
        sup.stop(name)
        sup.start(name, wait=False)
        RESTARTS.labels(name).inc()
        restarted.append(name)
    return restarted


def main() -> None:
    setup_logging("watchdog", "INFO")
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # a failed probe is handled here
    home = agentia_home()
    creds = load_or_create_credentials(home, InfraSettings.from_env(), create=False)
    subs = subscriptions()
    log.info("watching", extra={"queues": [s.queue for s in subs]})
    sup = Supervisor(home)
    app_token = ensure_tokens(home).app_api_token
    memory = Memory()
    start_http_server(names.WATCHDOG_METRICS_PORT, addr="127.0.0.1")
    cluster = rabbitmq_cluster.profile() == "cluster"
    split_watch = SplitWatch()
    while True:
        try:
            check_once(sup, creds.rabbitmq_url, app_token, subs, memory)
            check_drains(sup, creds.rabbitmq_url, app_token, memory)
            if cluster and split_watch.due(time.monotonic(), nodes_serving()):
                heal_split(sup)
        except (SupervisorError, OSError) as exc:
            log.warning("check failed", extra={"why": str(exc)})
        time.sleep(INTERVAL_S)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
    except Exception as exc:  # one line for the supervisor's log, then a restart
        print(json.dumps({"level": "error", "msg": f"watchdog stopped: {exc}"}), flush=True)
        raise
