"""`agentia chaos …` and `agentia soak`: fault experiments against the local mesh or a kind
cluster, their report tables, and the offline checker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agentia.paths import agentia_home
from agentia_tools.chaos import checker as chaos_checker
from agentia_tools.chaos import history as chaos_history
from agentia_tools.chaos import runner as chaos_runner
from agentia_tools.chaos import soak as soak_mod
from agentia_tools.chaos.soak import DEFAULT_SET
from agentia_tools.cli.common import console, fail, mesh_up, probe_table
from agentia_tools.cli.tables import fold

chaos_app = typer.Typer(
    help="Chaos experiments (Chaos Toolkit format) against the local mesh or a kind cluster."
)


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
        raise fail(str(exc), 2) from None
    if target == "local":  # each experiment starts from a healthy mesh: bring it up if needed
        probes = mesh_up()
        if not all(p.ok for p in probes):
            console.print(probe_table(probes))
            raise fail("the mesh is not healthy; no experiment was run")
    reports = []
    for exp in names_:
        for n in range(1, repeat + 1):
            what = f"{exp} ({n} of {repeat})" if repeat > 1 else exp
            console.print(f"• running {what} (this takes a minute or two)")
            try:
                report = chaos_runner.run(exp, target)
            except chaos_runner.ChaosError as exc:
                raise fail(str(exc), 2) from None
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
        "faults",
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


def soak(
    hours: Annotated[float, typer.Option(help="How long to go on (no new experiment after)")],
    experiments: Annotated[
        str | None, typer.Option(help="Comma-separated experiment names (default: the soak set)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the order of the experiments")] = 1,
    background_rate: Annotated[
        float,
        typer.Option(help="Runs a second of a steady load across every experiment (0: none)"),
    ] = 0.0,
) -> None:
    """Run fault experiments one after another for hours (seeded order), each judged by the
    checker; totals and each process's memory go to .agentia/chaos/soak-*.json."""
    names_ = [n.strip() for n in experiments.split(",")] if experiments else list(DEFAULT_SET)
    try:
        soak_mod.validate(hours, names_, background_rate)
    except chaos_runner.ChaosError as exc:
        raise fail(str(exc), 2) from None
    probes = mesh_up()  # as `chaos run`: the first experiment starts from a healthy mesh
    if not all(p.ok for p in probes):
        console.print(probe_table(probes))
        raise fail("the mesh is not healthy; the soak did not start")
    try:
        done, report = soak_mod.run(
            hours, names_, seed, lambda m: console.print(m), background_rate
        )
    except chaos_runner.ChaosError as exc:
        raise fail(str(exc), 2) from None
    totals = done.totals()
    console.print(json.dumps(totals, indent=1))
    if done.background is not None:
        shown = {k: v for k, v in done.background.items() if k != "lost_runs" or v}
        console.print("background load: " + json.dumps(shown, indent=1))
    console.print(f"report: {report}")
    clean = soak_mod.background_clean(done.background)
    if totals["failed"] or totals["lost"] or totals["duplicated"] or not clean:
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
        raise fail(str(exc), 2) from None
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
        raise fail(f"unknown target '{target}'; one of: {', '.join(chaos_runner.TARGETS)}", 2)
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
        raise fail(
            f"no {target} chaos reports in {where}: run `agentia chaos run … --target {target}`"
        )
    _print_chaos_table(reports, target)
    passed = sum(1 for r in reports if r.get("verdict") == "pass")
    console.print(f"{passed} of {len(reports)} passed · reports: {where}")
