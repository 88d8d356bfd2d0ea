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

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.cli.chaos import chaos_app, soak
from agentia_tools.cli.common import console, err, fail, mesh_up, probe_table, progress
from agentia_tools.cli.console import console as console_command
from agentia_tools.cli.keys import keys_app
from agentia_tools.cli.model import model_app
from agentia_tools.cli.postgres import postgres_app
from agentia_tools.cli.schedules import schedules_app
from agentia_tools.cli.trace import trace
from agentia_tools.cli.usage import usage
from agentia_tools.cli.workflows import workflows_app
from agentia_tools.kind import kind_app
from agentia_tools.runtime import orchestrate
from agentia_tools.runtime.daprbin import DaprBinariesError, ensure_dapr_binaries
from agentia_tools.runtime.local_keys import local_key_path
from agentia_tools.runtime.secrets_file import read_secrets
from agentia_tools.runtime.supervisor import Supervisor

app = typer.Typer(
    name="agentia",
    help="Agentia: AI agents as an event-driven mesh of services on Dapr.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
TOPIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


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
    probes = mesh_up(model, broker)
    console.print(probe_table(probes))
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
    orchestrate.down(agentia_home(), progress)


@app.command()
def status() -> None:
    """Health of every part of the mesh and, for what is down, why."""
    probes = orchestrate.status(agentia_home())
    console.print(probe_table(probes))
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
        raise fail(f"no log for '{name}'. Known: {', '.join(known) or 'none (is the mesh up?)'}", 2)
    cmd = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(path)]
    raise typer.Exit(subprocess.call(cmd))


def _parse_data(data: str) -> Any:
    if data.startswith("@"):
        try:
            data = Path(data[1:]).read_text()
        except OSError as exc:
            raise fail(f"DATA: cannot read {data[1:]}: {exc.strerror}", 2) from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise fail(f"DATA is not valid JSON ({exc.msg} at char {exc.pos})", 2) from None


def _sidecar(app_id: str) -> tuple[str, dict[str, str]]:
    if app_id not in names.PORTS:
        raise fail(f"unknown app '{app_id}'; one of: {', '.join(names.APP_IDS)}", 2)
    token = read_secrets(agentia_home()).get(names.SECRET_DAPR_API_TOKEN)
    if not token:
        raise fail("no Dapr API token found: run `agentia up` first")
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
        raise fail(f"TOPIC '{topic}' is not a valid topic name (letters, digits, . _ -)", 2)
    body = _parse_data(data)
    base, headers = _sidecar(via)
    try:
        resp = httpx.post(f"{base}/v1.0/publish/{pubsub}/{topic}", json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise fail(
            f"{via}'s sidecar is not reachable ({type(exc).__name__}); is the mesh up?"
        ) from None
    if resp.status_code >= 300:
        raise fail(f"publish refused ({resp.status_code}): {reason(resp)}")
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
    progress(f"draining {topic}, {batch_size} runs at a time")
    try:
        resp = httpx.post(url, json=body, headers=headers, timeout=660)
    except httpx.HTTPError as exc:
        raise fail(
            f"the gateway's sidecar is not reachable ({type(exc).__name__}); is the mesh up?"
        ) from None
    if resp.status_code in (409, 422):
        raise fail(f"drain refused: {resp.json().get('detail')}", 2)
    if resp.status_code != 200:
        raise fail(f"drain failed ({resp.status_code}): {reason(resp)}")
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
        raise fail(f"unknown app '{app_id}'; one of: {', '.join(names.APP_IDS)}", 2)
    body = _parse_data(data) if data is not None else None
    http_verb = (verb or ("POST" if data is not None else "GET")).upper()
    if http_verb not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
        raise fail(f"--verb '{verb}' is not an HTTP verb", 2)
    base, headers = _sidecar(via)
    url = f"{base}/v1.0/invoke/{app_id}/method/{method.lstrip('/')}"
    try:
        resp = httpx.request(http_verb, url, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise fail(
            f"{via}'s sidecar is not reachable ({type(exc).__name__}); is the mesh up?"
        ) from None
    if resp.status_code >= 400:
        raise fail(f"{app_id} answered {resp.status_code}: {reason(resp)}")
    try:
        console.print_json(json.dumps(resp.json()))
    except ValueError:
        console.print(resp.text)


@app.command()
def dapr() -> None:
    """Find the Dapr runtime binaries, building them once when missing; show what is used."""
    try:
        bins = ensure_dapr_binaries(progress)
    except DaprBinariesError as exc:
        raise fail(str(exc)) from None
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
app.add_typer(chaos_app, name="chaos")
app.command("soak")(soak)


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
