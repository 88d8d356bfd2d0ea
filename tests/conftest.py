"""Suite-wide set-up: the test that takes the whole mesh down runs last; crash points on."""

from __future__ import annotations

import os

import pytest

from agentia_tools.runtime import mesh

# The kind end-to-end suite needs the cluster `agentia kind up` builds (minutes, a Docker
# engine): it is its own command, `make test-kind`, which sets AGENTIA_KIND_E2E=1. Left out
# of the normal suite's collection rather than collected and skipped.
collect_ignore = [] if os.environ.get("AGENTIA_KIND_E2E") == "1" else ["kind_e2e"]
# The local-model suite needs llama-server and the model `agentia model build` makes (6 min
# the first time): its own command, `make test-model`, which sets AGENTIA_MODEL_E2E=1.
if os.environ.get("AGENTIA_MODEL_E2E") != "1":
    collect_ignore.append("model_e2e")
# The kind model-server test needs the `local-model` overlay: `make test-kind-model`.
if os.environ.get("AGENTIA_KIND_LOCAL_MODEL") != "1":
    collect_ignore.append("kind_e2e/test_local_model.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("mesh_lifecycle") is not None)


def pytest_configure(config: pytest.Config) -> None:
    # The mesh the tests start (or restart) serves crash points (agentia.faults), which
    # the crash-point tests arm; a mesh started by `agentia up` alone does not.
    os.environ.setdefault(mesh.FAULT_INJECTION_ENV, "1")
