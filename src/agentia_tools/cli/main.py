"""`agentia`: run the mesh on this machine and talk to it.

Every command prints what it does; bad arguments get a one-line reason and exit code 2,
failures exit 1 with what went wrong and where the logs are, never a traceback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.chaos import checker as chaos_checker
from agentia_tools.chaos import history as chaos_history
from agentia_tools.chaos import runner as chaos_runner
from agentia_tools.chaos import soak as soak_mod
from agentia_tools.chaos.soak import DEFAULT_SET
from agentia_tools.cli.console import console as console_command
from agentia_tools.cli.keys import keys_app
from agentia_tools.cli.model import model_app
from agentia_tools.cli.postgres import postgres_app
from agentia_tools.cli.schedules import schedules_app
from agentia_tools.cli.tables import fold
from agentia_tools.cli.trace import trace
from agentia_tools.cli.usage import usage
from agentia_tools.cli.workflows import workflows_app
from agentia_tools.kind import kind_app
from agentia_tools.runtime import orchestrate
from agentia_tools.runtime.daprbin import DaprBinariesError, ensure_dapr_binaries
from agentia_tools.runtime.health import Probe
from agentia_tools.runtime.infra import InfraError
from agentia_tools.runtime.local_keys import local_key_path
from agentia_tools.runtime.orchestrate import MeshError
from agentia_tools.runtime.secrets_file import read_secrets
from agentia_tools.runtime.supervisor import Supervisor, SupervisorError

app = typer.Typer(
    name="agentia",
    help="Agentia: AI agents as an event-driven mesh of services on Dapr.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)
TOPIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _progress(msg: str) -> None:
    console.print(f"[dim]•[/dim] {msg}")


def _fail(msg: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {msg}", soft_wrap=True)
    return typer.Exit(code)


def reason(resp: httpx.Response) -> str:
    """What a sidecar or a service said, in one line: Dapr's JSON errors become their
    message and code; FastAPI's, their detail."""
    try:
        body = resp.json()
    except ValueError:
        return " ".join(resp.text.split())[:500] or resp.reason_phrase
    if isinstance(body, dict) and body.get("message"):
        code = f" ({body['errorCode']})" if body.get("errorCode") else ""
        return f"{body['message']}{code}"
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return " ".join(json.dumps(body).split())[:500]


def _table(probes: list[Probe]) -> Table:
    table = Table(title="Agentia mesh", show_lines=False)
    for col in ("part", "kind", "state", "detail"):
        table.add_column(col)
    for p in probes:
        state = "[green]healthy[/green]" if p.ok else "[red]down[/red]"
        table.add_row(p.name, p.kind, state, p.detail if not p.ok else (p.url or p.detail))
    return fold(table)


def _mesh_up(model: str | None = None, broker: str | None = None) -> list[Probe]:
    """Start whatever of the mesh is not running; a start-up error is a CLI error."""
    try:
        return orchestrate.up(agentia_home(), _progress, model, broker)
    except (MeshError, InfraError, DaprBinariesError, SupervisorError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def up(
    model: Annotated[
        str | None,
        typer.Option(
            help="Model profile: offline (no model server) or local (llama-server with the "
            "model `agentia model build` cached, for agents on compatible:smollm2-135m). "
            "Default: $AGENTIA_MODEL_PROFILE, else offline.",
        ),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help="Broker profile: single (one RabbitMQ) or cluster (three nodes with quorum "
            "queues behind one port; docs/chaos.md). Default: $AGENTIA_BROKER_PROFILE, else "
            "the running mesh's, else single.",
        ),
    ] = None,
) -> None:
    """Start everything: RabbitMQ, PostgreSQL, Redis, Dapr's control plane, the five services
    and their sidecars (installing what is missing), then show what is up."""
    home = agentia_home()
    probes = _mesh_up(model, broker)
    console.print(_table(probes))
    console.print(f"gateway: [bold]{orchestrate.gateway_url()}[/bold]   logs: {home / 'logs'}")
    console.print(
        f"API key: in {local_key_path(home)} (send it as the x-api-key header; "
        "`agentia keys create` makes more)"
    )
    if not all(p.ok for p in probes):
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop every process the mesh started; leaves nothing running."""
    orchestrate.down(agentia_home(), _progress)


@app.command()
def status() -> None:
    """Health of every part of the mesh and, for what is down, why."""
    probes = orchestrate.status(agentia_home())
    console.print(_table(probes))
    if not all(p.ok for p in probes):
        raise typer.Exit(1)


@app.command()
def logs(
    process: Annotated[
        str, typer.Argument(help="App id (e.g. gateway), '<app>-dapr' or infra name")
    ],
    sidecar: Annotated[bool, typer.Option("--sidecar", help="The app's sidecar's log")] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1)] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
) -> None:
    """Show the log of one process."""
    sup = Supervisor(agentia_home())
    name = f"{process}-dapr" if sidecar else process
    path = sup.log_file(name)
    if not path.exists():
        known = sorted(p.stem for p in sup.logs.glob("*.log")) if sup.logs.exists() else []
        raise _fail(
            f"no log for '{name}'. Known: {', '.join(known) or 'none (is the mesh up?)'}", 2
        )
    cmd = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(path)]
    raise typer.Exit(subprocess.call(cmd))


def _parse_data(data: str) -> Any:
    if data.startswith("@"):
        try:
            data = Path(data[1:]).read_text()
        except OSError as exc:
            raise _fail(f"DATA: cannot read {data[1:]}: {exc.strerror}", 2) from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise _fail(f"DATA is not valid JSON ({exc.msg} at char {exc.pos})", 2) from None


def _sidecar(app_id: str) -> tuple[str, dict[str, str]]:
    if app_id not in names.PORTS:
        raise _fail(f"unknown app '{app_id}'; one of: {', '.join(names.APP_IDS)}", 2)
    token = read_secrets(agentia_home()).get(names.SECRET_DAPR_API_TOKEN)
    if not token:
        raise _fail("no Dapr API token found: run `agentia up` first")
    return f"http://127.0.0.1:{names.PORTS[app_id].dapr_http}", {"dapr-api-token": token}


@app.command()
def publish(
    topic: Annotated[str, typer.Argument(help="Topic, e.g. runs.requested")],
    data: Annotated[str, typer.Argument(help="JSON, or @file")],
    via: Annotated[str, typer.Option(help="App whose sidecar publishes")] = names.GATEWAY,
    pubsub: Annotated[str, typer.Option(help="Pub/sub component")] = names.PUBSUB,
) -> None:
    """Publish DATA on TOPIC through a sidecar (wrapped in a CloudEvent)."""
    if not TOPIC_RE.match(topic):
        raise _fail(f"TOPIC '{topic}' is not a valid topic name (letters, digits, . _ -)", 2)
    body = _parse_data(data)
    base, headers = _sidecar(via)
    try:
        resp = httpx.post(f"{base}/v1.0/publish/{pubsub}/{topic}", json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise _fail(
            f"{via}'s sidecar is not reachable ({type(exc).__name__}); is the mesh up?"
        ) from None
    if resp.status_code >= 300:
        raise _fail(f"publish refused ({resp.status_code}): {reason(resp)}")
    console.print(f"published to {pubsub}/{topic}")


@app.command()
def drain(
    batch_size: Annotated[int, typer.Option(min=1, help="Runs started at a time")] = 20,
    idle_s: Annotated[float, typer.Option(help="The queue is empty after this long")] = 2.0,
    topic: Annotated[str, typer.Option(help="Topic to drain")] = names.TOPIC_RUNS_BATCH,
) -> None:
    """Drain runs.batch now: start the runs waiting there, --batch-size at a time, each batch
    waited for, until the queue is empty (what a 'drain' schedule does at each fire)."""
    base, headers = _sidecar(names.GATEWAY)
    body = {"topic": topic, "batch_size": batch_size, "idle_s": idle_s}
    url = f"{base}/v1.0/invoke/{names.SCHEDULER}/method/internal/drains"
    _progress(f"draining {topic}, {batch_size} runs at a time")
    try:
        resp = httpx.post(url, json=body, headers=headers, timeout=660)
    except httpx.HTTPError as exc:
        raise _fail(
            f"the gateway's sidecar is not reachable ({type(exc).__name__}); is the mesh up?"
        ) from None
    if resp.status_code in (409, 422):
        raise _fail(f"drain refused: {resp.json().get('detail')}", 2)
    if resp.status_code != 200:
        raise _fail(f"drain failed ({resp.status_code}): {reason(resp)}")
    report = resp.json()
    console.print(
        f"{report['received']} taken, {report['started']} runs started in "
        f"{report['batches']} batches ({report['unfinished']} unfinished), "
        f"{report['dead_lettered']} kept as dead letters; stopped: {report['stopped']} "
        f"({report['took_s']:.1f} s)"
    )


@app.command()
def invoke(
    app_id: Annotated[str, typer.Argument(metavar="APP", help="Target app id")],
    method: Annotated[str, typer.Argument(help="Method path on the target, e.g. internal/info")],
    data: Annotated[str | None, typer.Argument(help="JSON body, or @file")] = None,
    verb: Annotated[str, typer.Option(help="HTTP verb")] = "",
    via: Annotated[str, typer.Option(help="App whose sidecar makes the call")] = names.GATEWAY,
) -> None:
    """Call METHOD on APP through Dapr service invocation and print the answer."""
    if app_id not in names.PORTS:
        raise _fail(f"unknown app '{app_id}'; one of: {', '.join(names.APP_IDS)}", 2)
    body = _parse_data(data) if data is not None else None
    http_verb = (verb or ("POST" if data is not None else "GET")).upper()
    if http_verb not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
        raise _fail(f"--verb '{verb}' is not an HTTP verb", 2)
    base, headers = _sidecar(via)
    url = f"{base}/v1.0/invoke/{app_id}/method/{method.lstrip('/')}"
    try:
        resp = httpx.request(http_verb, url, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise _fail(
            f"{via}'s sidecar is not reachable ({type(exc).__name__}); is the mesh up?"
        ) from None
    if resp.status_code >= 400:
        raise _fail(f"{app_id} answered {resp.status_code}: {reason(resp)}")
    try:
        console.print_json(json.dumps(resp.json()))
    except ValueError:
        console.print(resp.text)


@app.command()
def dapr() -> None:
    """Find the Dapr runtime binaries, building them once when missing; show what is used."""
    try:
        bins = ensure_dapr_binaries(_progress)
    except DaprBinariesError as exc:
        raise _fail(str(exc)) from None
    console.print(f"Dapr {bins.version} ({bins.source}): {bins.daprd.parent}")


app.add_typer(kind_app, name="kind")
app.add_typer(keys_app, name="keys")
app.add_typer(model_app, name="model")
app.add_typer(postgres_app, name="postgres")
app.add_typer(schedules_app, name="schedules")
app.command("usage")(usage)
app.command("console")(console_command)
app.command("trace")(trace)
app.add_typer(workflows_app, name="workflows")
chaos_app = typer.Typer(
    help="Chaos experiments (Chaos Toolkit format) against the local mesh or a kind cluster."
)
app.add_typer(chaos_app, name="chaos")


@chaos_app.command("list")
def chaos_list() -> None:
    """The experiments in tests/chaos/experiments/ (kind variants in its kind/ folder)."""
    table = Table(title="chaos experiments")
    table.add_column("name")
    table.add_column("targets")
    table.add_column("fault")
    for exp in chaos_runner.experiments():
        table.add_row(exp.name, ", ".join(exp.targets), exp.title)
    console.print(fold(table))


@chaos_app.command("run")
def chaos_run(
    name: Annotated[str, typer.Argument(help="Experiment name, or 'all'")],
    target: Annotated[
        str, typer.Option(help="local (the mesh on this machine) or kind (context kind-agentia)")
    ] = "local",
    repeat: Annotated[
        int, typer.Option(min=1, max=1000, help="Run each experiment this many times in a row")
    ] = 1,
) -> None:
    """Run experiments with Chaos Toolkit; print a report table (a row per run); write JSON
    reports (with --repeat, each run's as <name>.<n>.json too)."""
    known = chaos_runner.experiments()
    names_ = [e.name for e in known if target in e.targets] if name == "all" else [name]
    try:  # refuse a bad name or target, or a missing cluster, before running anything
        for exp in names_ or ["all"]:
            chaos_runner.variant(exp, target)
        if target == "kind":
            chaos_runner.kind_preflight()
    except chaos_runner.ChaosError as exc:
        raise _fail(str(exc), 2) from None
    if target == "local":  # each experiment starts from a healthy mesh: bring it up if needed
        probes = _mesh_up()
        if not all(p.ok for p in probes):
            console.print(_table(probes))
            raise _fail("the mesh is not healthy; no experiment was run")
    reports = []
    for exp in names_:
        for n in range(1, repeat + 1):
            what = f"{exp} ({n} of {repeat})" if repeat > 1 else exp
            console.print(f"• running {what} (this takes a minute or two)")
            try:
                report = chaos_runner.run(exp, target)
            except chaos_runner.ChaosError as exc:
                raise _fail(str(exc), 2) from None
            if repeat > 1:
                report["experiment"] = f"{exp} #{n}"
                chaos_runner.keep_report(report, f"{exp}.{n}", target)
            console.print(f"  {what}: {report['verdict']}")
            reports.append(report)
    _print_chaos_table(reports, target)
    where = agentia_home() / "chaos" / ("kind" if target == "kind" else "")
    console.print(f"reports: {where}")
    if repeat > 1:
        for exp in names_:
            runs_ = [r for r in reports if r["experiment"].startswith(f"{exp} #")]
            passed = sum(1 for r in runs_ if r["verdict"] == "pass")
            console.print(f"{exp}: {passed} of {len(runs_)} passed")
    if any(r["verdict"] != "pass" for r in reports):
        raise typer.Exit(1)


def _print_chaos_table(reports: list[dict[str, Any]], target: str) -> None:
    """The report table: a row per run, the columns the reports have."""
    table = Table(title=f"chaos report ({target})")
    cols: tuple[str, ...] = (
        "experiment",
        "load",
        "sent",
        "accepted",
        "completed",
        "lost",
        "duplicated",
        "workflows",
        "streams",
        "recovery_s",
        "checker",
        "verdict",
    )
    if target == "kind":  # what only the kind bookkeeping counts (see docs/kubernetes.md)
        cols = (*cols[:-1], "resubmitted", cols[-1])
    # What the kill loops count (through the gateway), shown when any report has it.
    extra = ("refused_attempts", "dead_lettered", "wedged_threads", "final_s_after_faults")
    cols = (*cols[:-1], *(c for c in extra if any(c in r for r in reports)), cols[-1])
    for col in cols:
        table.add_column(col)
    for r in reports:
        if "workflows" in r:  # completed of started, for the experiments that start workflows
            r = {**r, "workflows": f"{r.get('workflows_completed', 0)}/{r['workflows']}"}
        if "streams" in r:  # complete of started, for the experiments with streaming clients
            r = {**r, "streams": f"{r.get('streams_complete', 0)}/{r['streams']}"}
        if isinstance(r.get("checker"), dict):  # the offline checker's verdict on the history
            r = {**r, "checker": checker_cell(r["checker"])}
        table.add_row(*(str(r.get(c, "-")) for c in cols))
    # One line per experiment in logs too (off a terminal Rich assumes 80 columns).
    (console if console.is_terminal else Console(width=160)).print(fold(table))


@app.command()
def soak(
    hours: Annotated[float, typer.Option(help="How long to go on (no new experiment after)")],
    experiments: Annotated[
        str | None, typer.Option(help="Comma-separated experiment names (default: the soak set)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the order of the experiments")] = 1,
) -> None:
    """Run fault experiments one after another for hours (seeded order), each judged by the
    checker; totals and each process's memory go to .agentia/chaos/soak-*.json."""
    names_ = [n.strip() for n in experiments.split(",")] if experiments else list(DEFAULT_SET)
    try:
        soak_mod.validate(hours, names_)
    except chaos_runner.ChaosError as exc:
        raise _fail(str(exc), 2) from None
    probes = _mesh_up()  # as `chaos run`: the first experiment starts from a healthy mesh
    if not all(p.ok for p in probes):
        console.print(_table(probes))
        raise _fail("the mesh is not healthy; the soak did not start")
    try:
        done, report = soak_mod.run(hours, names_, seed, lambda m: console.print(m))
    except chaos_runner.ChaosError as exc:
        raise _fail(str(exc), 2) from None
    totals = done.totals()
    console.print(json.dumps(totals, indent=1))
    console.print(f"report: {report}")
    if totals["failed"] or totals["lost"] or totals["duplicated"]:
        raise typer.Exit(1)


def checker_cell(verdict: dict[str, Any]) -> str:
    """``ok``, or the checker's non-zero counts."""
    faults = ("lost", "duplicated", "unexpected", "stale", "gapped", "stuck")
    bad = [f"{name} {verdict[name]}" for name in faults if verdict.get(name)]
    return ", ".join(bad) if bad else "ok"


@chaos_app.command("check")
def chaos_check(
    history: Annotated[Path, typer.Argument(help="A history file a chaos load wrote (JSONL)")],
) -> None:
    """Check a history offline: lost, duplicated, unexpected, stale, gapped, stuck; exits 1
    unless all are 0. Each experiment's report names its history (``history``)."""
    try:
        verdict = chaos_checker.check(chaos_history.read(history))
    except (OSError, ValueError) as exc:
        raise _fail(str(exc), 2) from None
    table = Table(title=f"history {history.name}")
    table.add_column("count")
    table.add_column("value")
    for key, value in verdict.summary().items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)
    if not verdict.ok:
        raise typer.Exit(1)


@chaos_app.command("report")
def chaos_report(
    target: Annotated[
        str, typer.Option(help="local or kind: whose stored reports to show")
    ] = "local",
) -> None:
    """The table of the last run of each experiment, from the reports `chaos run` wrote."""
    if target not in chaos_runner.TARGETS:
        raise _fail(f"unknown target '{target}'; one of: {', '.join(chaos_runner.TARGETS)}", 2)
    where = agentia_home() / "chaos" / ("kind" if target == "kind" else "")
    reports = []
    for path in sorted(where.glob("*.json")):
        if path.name.endswith(".journal.json"):
            continue
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and report.get("target", "local") == target:
            reports.append(report)
    if not reports:
        raise _fail(
            f"no {target} chaos reports in {where}: run `agentia chaos run … --target {target}`"
        )
    _print_chaos_table(reports, target)
    passed = sum(1 for r in reports if r.get("verdict") == "pass")
    console.print(f"{passed} of {len(reports)} passed · reports: {where}")


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
