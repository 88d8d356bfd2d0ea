"""The sidecars run with the features the mesh's Configuration asks for: no hot reload of
components (a changed component restarts its sidecar; Dapr 1.18.0's reload check logged an
error a minute about the actor state store), and the workflow features left at their
defaults."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from agentia import names

from .conftest import Sidecar

pytestmark = pytest.mark.integration


def test_no_sidecar_hot_reloads_its_components(mesh_sidecar: Callable[[str], Sidecar]) -> None:
    for app_id in (names.GATEWAY, names.AGENT_RUNNER):
        sidecar = mesh_sidecar(app_id)
        resp = httpx.get(f"{sidecar.dapr}/v1.0/metadata", headers=sidecar.headers(), timeout=10)
        assert resp.status_code == 200, resp.text
        features = resp.json().get("enabledFeatures") or []
        assert "HotReload" not in features, (app_id, features)
        assert "WorkflowsRemoteActivityReminder" in features, (app_id, features)
