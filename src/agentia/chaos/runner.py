"""Run the experiments with Chaos Toolkit itself and gather a report per experiment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentia.paths import agentia_home, repo_root


class ChaosError(RuntimeError):
    """An experiment could not be run; the message says why."""


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    path: Path
    tags: tuple[str, ...] = ()


def experiments() -> list[Experiment]:
    folder = repo_root() / "tests" / "chaos" / "experiments"
    found = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        found.append(Experiment(path.stem, doc["title"], path, tuple(doc.get("tags", ()))))
    return found


def run(name: str, target: str = "local") -> dict[str, Any]:
    """Run one experiment with `chaos run`; the report merges our counts and its verdict."""
    if target != "local":
        raise ChaosError(f"target '{target}' is not supported yet; only 'local' is")
    known = {e.name: e for e in experiments()}
    if name not in known:
        raise ChaosError(f"unknown experiment '{name}'; one of: {', '.join(known)}")
    exp = known[name]
    out_dir = agentia_home() / "chaos"
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / f"{name}.json"
    report_path.unlink(missing_ok=True)
    journal = out_dir / f"{name}.journal.json"
    chaos = Path(sys.executable).parent / "chaos"
    proc = subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "--log-file",
            str(out_dir / f"{name}.log"),
            "run",
            "--journal-path",
            str(journal),
            str(exp.path),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.exists() else {}
    status = "unknown"
    deviated = True
    failed: list[str] = []
    if journal.exists():
        j = json.loads(journal.read_text())
        status, deviated = j.get("status", "unknown"), bool(j.get("deviated", True))
        # Chaos Toolkit goes on after a failed action: a fault that was never injected must
        # not read as a pass.
        failed = [
            str(r.get("activity", {}).get("name"))
            for r in j.get("run", [])
            if r.get("status") == "failed"
        ]
    report.update(
        experiment=name,
        fault=exp.title,
        chaostoolkit_status=status,
        deviated=deviated,
        failed_activities=failed,
        verdict="pass"
        if report.get("ok") and status == "completed" and not deviated and not failed
        else "fail",
        journal=str(journal),
    )
    if proc.returncode not in (0, 1) and not report.get("sent"):
        report["error"] = (proc.stderr or proc.stdout)[-1500:]
    report_path.write_text(json.dumps(report, indent=1))
    return report
