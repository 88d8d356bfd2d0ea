"""Run the experiments with Chaos Toolkit itself and gather a report per experiment.

An experiment has a variant per target: ``tests/chaos/experiments/<name>.json`` runs on the
local mesh, ``tests/chaos/experiments/kind/<name>.json`` on the kind cluster (its faults are
chaostoolkit-kubernetes' actions, its load goes through the gateway's public API).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agentia.paths import agentia_home, repo_root
from agentia_tools.chaos import kind_load
from agentia_tools.kind import CONTEXT, DAPR_NAMESPACE
from agentia_tools.kind_render import NAMESPACE

TARGETS: Final = ("local", "kind")


class ChaosError(RuntimeError):
    """An experiment could not be run; the message says why."""


@dataclass(frozen=True)
class Variant:
    """One experiment document, for one target."""

    target: str
    title: str
    path: Path
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: dict[str, Variant] = field(default_factory=dict)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t for t in TARGETS if t in self.variants)

    @property
    def title(self) -> str:
        return self.variants[self.targets[0]].title

    @property
    def tags(self) -> tuple[str, ...]:
        """The local variant's tags (``ci`` picks the short local pass), else the first's."""
        return self.variants[self.targets[0]].tags


def experiments_dir() -> Path:
    return repo_root() / "tests" / "chaos" / "experiments"


def experiments() -> list[Experiment]:
    found: dict[str, dict[str, Variant]] = {}
    folders = {"local": experiments_dir(), "kind": experiments_dir() / "kind"}
    for target, folder in folders.items():
        for path in sorted(folder.glob("*.json")):
            doc = json.loads(path.read_text())
            variant = Variant(target, doc["title"], path, tuple(doc.get("tags", ())))
            found.setdefault(path.stem, {})[target] = variant
    return [Experiment(name, found[name]) for name in sorted(found)]


def kind_preflight() -> None:
    """What the kind target needs on this machine, each missing piece named."""
    if not shutil.which("kubectl"):
        raise ChaosError("kind target: kubectl is not on PATH (see docs/kubernetes.md)")
    proc = subprocess.run(
        ["kubectl", "config", "get-contexts", "-o", "name"],
        capture_output=True,
        text=True,
        check=False,
    )
    if CONTEXT not in proc.stdout.split():
        raise ChaosError(f"kind target: no kube context '{CONTEXT}' (run `agentia kind up` first)")
    if not kind_load.api_key():
        raise ChaosError(
            "kind target: no API key of the cluster's gateway (`agentia kind up` keeps one "
            "in .agentia/kind-api-key; or set AGENTIA_API_KEY)"
        )


@contextmanager
def kind_env() -> Iterator[dict[str, str]]:
    """The environment for `chaos run` on kind: a kubeconfig holding only the kind context
    (chaosk8s then cannot reach any other cluster) and that context named again."""
    proc = subprocess.run(
        ["kubectl", "config", "view", "--flatten", "--minify", "--context", CONTEXT],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ChaosError(f"kind target: cannot read context '{CONTEXT}': {proc.stderr.strip()}")
    with tempfile.TemporaryDirectory(prefix="agentia-chaos-") as tmp:
        config = Path(tmp) / "kubeconfig"
        config.touch(mode=0o600)
        config.write_text(proc.stdout)
        yield {
            "KUBECONFIG": str(config),
            "KUBERNETES_CONTEXT": CONTEXT,
            "AGENTIA_KIND_NAMESPACE": NAMESPACE,
            "AGENTIA_DAPR_NAMESPACE": DAPR_NAMESPACE,
        }


def variant(name: str, target: str) -> Variant:
    """The experiment's document for ``target``; refused by name when there is none."""
    if target not in TARGETS:
        raise ChaosError(f"unknown target '{target}'; one of: {', '.join(TARGETS)}")
    known = {e.name: e for e in experiments()}
    if name not in known:
        raise ChaosError(f"unknown experiment '{name}'; one of: {', '.join(known)}")
    exp = known[name]
    if target not in exp.variants:
        raise ChaosError(
            f"experiment '{name}' has no {target} variant (it has: {', '.join(exp.targets)})"
        )
    return exp.variants[target]


def run(name: str, target: str = "local") -> dict[str, Any]:
    """Run one experiment with `chaos run`; the report merges our counts and its verdict."""
    chosen = variant(name, target)
    if target == "kind":
        kind_preflight()
        with kind_env() as env:
            return _run(chosen, name, env)
    return _run(chosen, name, {})


def report_name(variant: Variant, name: str) -> str:
    """Where a variant's report goes under .agentia/chaos/ (the kind ones in kind/); it is
    also the ``experiment`` argument the variant's probes record under."""
    return name if variant.target == "local" else f"{variant.target}/{name}"


def _run(variant: Variant, name: str, extra_env: dict[str, str]) -> dict[str, Any]:
    key = report_name(variant, name)
    out_dir = agentia_home() / "chaos"
    report_path = out_dir / f"{key}.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.unlink(missing_ok=True)
    journal = out_dir / f"{key}.journal.json"
    chaos = Path(sys.executable).parent / "chaos"
    proc = subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "--log-file",
            str(out_dir / f"{key}.log"),
            "run",
            "--journal-path",
            str(journal),
            str(variant.path),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **extra_env},
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
        report["faults"] = int(report.get("faults") or 0) + library_faults(j)
    report.update(
        experiment=name,
        fault=variant.title,
        target=variant.target,
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


def library_faults(journal: dict[str, Any]) -> int:
    """Faults injected by Chaos Toolkit's own Kubernetes actions (chaosk8s: pods terminated,
    deployments and statefulsets scaled), one per action that succeeded; ours count
    themselves (chaos/injected.py)."""
    return sum(
        1
        for r in journal.get("run", [])
        if r.get("status") == "succeeded"
        and r.get("activity", {}).get("type") == "action"
        and str(r.get("activity", {}).get("provider", {}).get("module", "")).startswith("chaosk8s")
    )


def keep_report(report: dict[str, Any], key: str, target: str = "local") -> Path:
    """Write ``report`` as ``<key>.json`` beside the experiments' own reports."""
    folder = agentia_home() / "chaos" / ("kind" if target == "kind" else "")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    path.write_text(json.dumps(report, indent=1))
    return path
