"""Chaos Toolkit actions on the local mesh (``"module": "agentia_tools.chaos.actions"``)."""

from __future__ import annotations

import time
import uuid
import xmlrpc.client

import httpx

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.chaos import api_load, injected
from agentia_tools.chaos import load as load_mod
from agentia_tools.chaos import streams as streams_mod
from agentia_tools.runtime import health, local_keys, orchestrate
from agentia_tools.runtime.supervisor import Supervisor

MAX_LOOP_S = 900.0  # a kill loop never runs longer than this, whatever it is asked
API_LOAD: dict[str, api_load.ApiLoad] = {}
FAULTS: dict[str, float] = {}  # "ended": when the last fault of a loop was injected (epoch)
CHAOS_KEY_FILE = "chaos/api-key"
# The load polls every unsettled run each second: more than a key's default rate limit.
CHAOS_KEY_RATE_PER_MINUTE = 100_000


def chaos_key() -> str:
    """The load's own write key (made once, kept in .agentia/chaos/api-key, mode 0600), so
    that its polling never spends the user's key's rate limit."""
    home = agentia_home()
    path = home / CHAOS_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if local_keys.key_ring(home).verify(key) is not None:
            return key
    key, _ = local_keys.create_key(
        home, f"chaos-{uuid.uuid4().hex[:6]}", "write", CHAOS_KEY_RATE_PER_MINUTE
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    local_keys.reload_gateway_secrets(home)
    return key


def local_gateway() -> httpx.Client:
    """A client of the local mesh's gateway with the chaos load's key."""
    base = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
    return httpx.Client(base_url=base, headers={"x-api-key": chaos_key()}, timeout=15)


def _gateway_takes_key(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with local_gateway() as client:
                if client.post("/threads/search", json={}).status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the gateway does not take the chaos key after {timeout:.0f}s")


def start_load(
    runs: int = 60, per_second: float = 4.0, agent: str = "assistant", text: str = "hello"
) -> str:
    """Start a steady load of agent runs; it goes on while the next activities run."""
    load = load_mod.start(runs, per_second, agent, text)
    return f"publishing {load.runs} runs at {load.per_second:g}/s"


def start_api_load(
    runs: int = 120,
    per_second: float = 1.0,
    agent: str = "assistant",
    text: str = 'calculator {"expression": "{n}*7"}',
) -> str:
    """Start a steady load through the gateway's public API, one thread per run (``{n}`` in
    ``text`` is the run's number); it goes on while the next activities run."""
    FAULTS.pop("ended", None)
    _gateway_takes_key()
    API_LOAD["load"] = api_load.start(local_gateway, runs, per_second, agent, text)
    return f"posting {runs} runs at {per_second:g}/s to the gateway"


def kill_loop(name: str, every_s: float, for_s: float, recover_timeout: float = 180) -> str:
    """SIGKILL one supervised process every ``every_s`` for ``for_s`` (at most
    ``MAX_LOOP_S``); the supervisor restarts it each time. Then wait for a healthy mesh."""
    sup = Supervisor(agentia_home())
    started = time.monotonic()
    kills = skipped = 0
    while time.monotonic() - started < min(for_s, MAX_LOOP_S):
        try:
            sup.kill(name, "KILL")
            kills += 1
            injected.fault()
        except xmlrpc.client.Fault:
            skipped += 1  # not running at that moment (still restarting): next time
        time.sleep(every_s)
    FAULTS["ended"] = time.time()
    took = wait_healthy(recover_timeout)
    return (
        f"{name} SIGKILLed {kills} times (every {every_s:g}s for {for_s:g}s, {skipped} "
        f"skipped while it restarted); mesh healthy again {took:.1f}s after the last"
    )


def wait_healthy(timeout: float) -> float:
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if all(p.ok for p in health.mesh_probes()):
            return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError(f"mesh not healthy {timeout:.0f}s after the fault")


def restart_with_plan(name: str) -> int:
    """Restart the supervised program ``name`` as the mesh's plan now has it (a changed
    environment or command line); waits for a healthy mesh. Its new pid."""
    home = agentia_home()
    plan = orchestrate.plan(home, lambda _: None)
    sup = Supervisor(home)
    sup.write(plan.specs)
    sup.start_daemon()  # a running supervisord reloads: the changed program is replaced
    sup.start(name)
    wait_healthy(120)
    for proc in sup.processes():
        if proc.name == name and proc.pid:
            return proc.pid
    raise RuntimeError(f"{name} is not running after its restart")


def kill_process(name: str, signal: str = "KILL", recover_timeout: float = 120) -> str:
    """kill -9 one supervised process; the supervisor restarts it. Records recovery time."""
    load = load_mod.CURRENT.get("load")
    Supervisor(agentia_home()).kill(name, signal)
    injected.fault()
    if load:
        load.fault_at = time.monotonic()
    time.sleep(1)
    took = wait_healthy(recover_timeout)
    if load:
        load.recovery_s = round(took + 1, 2)
    return f"{name} killed with SIG{signal}; mesh healthy again after {took + 1:.1f}s"


def kill_everything(recover_timeout: float = 240) -> str:
    """kill -9 every supervised process at once: infrastructure, control plane, apps,
    sidecars. The supervisor restarts them all."""
    sup = Supervisor(agentia_home())
    load = load_mod.CURRENT.get("load")
    running = [p.name for p in sup.processes() if p.state == "RUNNING"]
    for name in running:
        sup.kill(name, "KILL")
    injected.fault(len(running))
    if load:
        load.fault_at = time.monotonic()
    time.sleep(2)
    took = wait_healthy(recover_timeout)
    if load:
        load.recovery_s = round(took + 2, 2)
    return f"killed {len(running)} processes; mesh healthy again after {took + 2:.1f}s"


def stop_process(name: str, seconds: float = 30, recover_timeout: float = 180) -> str:
    """Stop one supervised process for ``seconds`` (a broker or database outage), then start it."""
    sup = Supervisor(agentia_home())
    load = load_mod.CURRENT.get("load")
    sup.stop(name)
    injected.fault()
    if load:
        load.fault_at = time.monotonic()
    time.sleep(seconds)
    sup.start(name, wait=False)
    took = wait_healthy(recover_timeout)
    if load:
        load.recovery_s = round(took, 2)
    return f"{name} stopped for {seconds:g}s; mesh healthy {took:.1f}s after the restart"


def freeze_process(name: str, recover_timeout: float = 180) -> str:
    """SIGSTOP one process and leave it frozen: its connections stay open, so the broker
    still counts its consumer, but nothing is delivered. Nothing here thaws it; the mesh's
    watchdog has to notice the stalled subscription and restart the process."""
    load = load_mod.CURRENT.get("load")
    Supervisor(agentia_home()).kill(name, "STOP")
    injected.fault()
    if load:
        load.fault_at = time.monotonic()
    time.sleep(1)
    took = wait_healthy(recover_timeout)
    if load:
        load.recovery_s = round(took + 1, 2)
    return f"{name} frozen with SIGSTOP; restarted and healthy again after {took + 1:.1f}s"


def thaw_process(name: str) -> str:
    """Rollback: SIGCONT, in case the process is still frozen."""
    sup = Supervisor(agentia_home())
    if any(p.name == name and p.state == "RUNNING" for p in sup.processes()):
        sup.kill(name, "CONT")
    return f"{name} sent SIGCONT"


def publish_poison(count: int = 3) -> str:
    """Publish run requests that fail on every delivery (a thread id the memory service
    refuses): they must end in the dead-letter topic, failed, while the load flows on."""
    ids = [f"poison-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    base, headers = load_mod.sidecar()
    for run_id in ids:
        body = {"run_id": run_id, "agent_id": "assistant", "input": "x", "thread_id": "bad id!"}
        resp = httpx.post(
            f"{base}/v1.0/publish/pubsub/{names.TOPIC_RUNS_REQUESTED}", json=body, headers=headers
        )
        resp.raise_for_status()
        injected.fault()
    load_mod.CURRENT_POISON[:] = ids
    return f"published {count} poison run requests"


def start_workflows(count: int = 6, pause_s: float = 3.0) -> str:
    """Start AgentLoop workflows that take a few durable timers to finish (two tool steps,
    ``pause_s`` apart), so they are mid-flight when the next fault hits."""
    base, headers = load_mod.sidecar()
    ids = [f"chaos-wf-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    messages = ['calculator {"expression": "6*7"}', 'calculator {"expression": "2+2"}']
    for instance in ids:
        body = {
            "workflow": "AgentLoop",
            "instance_id": instance,
            "input": {"agent_id": "assistant", "messages": messages, "pause_between_s": pause_s},
        }
        resp = httpx.post(
            f"{base}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/workflows",
            json=body,
            headers=headers,
            timeout=30,
        )
        resp.raise_for_status()
        load_mod.workflow_history().record("workflow_started", "load", instance=instance)
    load_mod.CURRENT_WORKFLOWS[:] = ids
    return f"started {count} workflows"


def kill_processes(names_: list[str], recover_timeout: float = 120) -> str:
    """kill -9 several supervised processes at once (e.g. the Dapr control plane)."""
    load = load_mod.CURRENT.get("load")
    sup = Supervisor(agentia_home())
    for name in names_:
        sup.kill(name, "KILL")
    injected.fault(len(names_))
    if load:
        load.fault_at = time.monotonic()
    time.sleep(1)
    took = wait_healthy(recover_timeout)
    if load:
        load.recovery_s = round(took + 1, 2)
    return f"{', '.join(names_)} killed; mesh healthy again after {took + 1:.1f}s"


def start_streams(count: int = 8, text: str = "hello") -> str:
    """Clients that stream runs through the gateway and resume with Last-Event-ID."""
    streams_mod.start(count, text)
    return f"{count} streaming clients started"


def ensure_up() -> str:
    """Rollback: every process running and healthy again."""
    orchestrate.up(agentia_home(), lambda m: None)
    return "mesh up"
