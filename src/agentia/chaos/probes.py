"""Chaos Toolkit probes on the local mesh (``"module": "agentia.chaos.probes"``)."""

from __future__ import annotations

import json
from typing import Any

from agentia.chaos import load as load_mod
from agentia.paths import agentia_home
from agentia.runtime import health


def mesh_healthy() -> bool:
    """Every app, sidecar and control-plane process answers its health check."""
    return all(p.ok for p in health.mesh_probes())


def nothing_lost(experiment: str, timeout: float = 180) -> dict[str, Any]:
    """Wait for the load to finish; report sent/accepted/completed/lost/duplicated runs.

    The report also goes to ``$AGENTIA_HOME/chaos/<experiment>.json``; ``ok`` is the verdict.
    """
    load = load_mod.CURRENT.get("load")
    if load is None:
        raise RuntimeError("no load was started in this experiment")
    result = load_mod.outcome(load, timeout)
    result["ok"] = result["lost"] == 0 and result["duplicated"] == 0 and result["refused"] == 0
    out = agentia_home() / "chaos" / f"{experiment}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **result}, indent=1))
    return result
