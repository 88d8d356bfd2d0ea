"""Who may import whom, read from the source (no import runs).

- No service imports another service's package: they talk through their sidecars only.
- ``agentia_workflows`` (workflow and activity code) imports no Dapr client: its side effects
  go through what the runner hands its activities; the workflow SDK itself is allowed.
- The building blocks in ``agentia`` (what services import) import no developer tooling
  (``agentia_tools``: the CLI, the local supervisor, chaos, kind), and no service imports
  tooling either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentia.paths import repo_root

ROOT = repo_root()
SERVICES = {
    "agentia_gateway": ROOT / "services/gateway/agentia_gateway",
    "agentia_runner": ROOT / "services/agent-runner/agentia_runner",
    "agentia_memory": ROOT / "services/memory/agentia_memory",
    "agentia_scheduler": ROOT / "services/scheduler/agentia_scheduler",
    "agentia_toolmcp": ROOT / "services/tool-mcp/agentia_toolmcp",
}
WORKFLOWS = ROOT / "workflows/agentia_workflows"
BLOCKS = ROOT / "src/agentia"
TOOLING = ("agentia_tools",)
DAPR_CLIENTS = ("dapr.clients", "dapr.aio", "agentia.dapr", "agentia.service", "httpx", "grpc")


def imported(source: str) -> Iterator[str]:
    """Every absolute module name ``source`` imports (``from x import y`` gives ``x.y`` too,
    so importing a submodule by name is seen)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _is(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def breaches(package: str, source: str) -> list[str]:
    """The imports in ``source`` (a module of ``package``) that break a contract."""
    found: list[str] = []
    for module in imported(source):
        top = module.split(".")[0]
        if top in SERVICES and top != package:
            found.append(f"{module}: a service imports another service")
        if package in SERVICES and _is(module, TOOLING):
            found.append(f"{module}: a service imports developer tooling")
        if package == "agentia_workflows" and _is(module, DAPR_CLIENTS):
            found.append(f"{module}: workflow code imports a Dapr client")
        if package == "agentia" and _is(module, TOOLING):
            found.append(f"{module}: a building block imports developer tooling")
    return found


def _modules() -> Iterator[tuple[str, Path]]:
    for package, folder in SERVICES.items():
        yield from ((package, p) for p in folder.rglob("*.py"))
    yield from (("agentia_workflows", p) for p in WORKFLOWS.rglob("*.py"))
    yield from (("agentia", p) for p in BLOCKS.rglob("*.py"))


def test_every_package_is_found() -> None:
    for folder in [*SERVICES.values(), WORKFLOWS, BLOCKS]:
        assert (folder / "__init__.py").is_file(), folder


def test_no_module_breaks_an_import_contract() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {breach}"
        for package, path in _modules()
        for breach in breaches(package, path.read_text())
    ]
    assert found == []


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("agentia_gateway", "from agentia_runner.ledger import Ledger"),
        ("agentia_memory", "import agentia_gateway.settings"),
        ("agentia_gateway", "from agentia_tools.runtime import supervisor"),
        ("agentia_workflows", "from agentia.dapr import DaprClient"),
        ("agentia_workflows", "from dapr.clients import DaprClient"),
        ("agentia", "from agentia_tools.chaos.load import start_load"),
        ("agentia", "from agentia_tools import kind_up"),
        ("agentia", "import agentia_tools.cli.main"),
    ],
)
def test_a_breach_is_caught(package: str, source: str) -> None:
    assert breaches(package, source)


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("agentia_gateway", "from agentia.events import RunEvent"),
        ("agentia_runner", "from agentia_workflows.workflows import agent_loop"),
        ("agentia_workflows", "from dapr.ext.workflow import DaprWorkflowContext"),
        ("agentia", "from agentia import names"),
    ],
)
def test_what_is_allowed_passes(package: str, source: str) -> None:
    assert breaches(package, source) == []
