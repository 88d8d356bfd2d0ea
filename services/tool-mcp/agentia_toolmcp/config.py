"""User configuration of the tool server: ``tools.yaml`` (modules with user tools, other MCP
servers to forward, per-tool settings) and loading the user modules. Any mistake stops the
start-up with a message naming the module, server or field."""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentia_toolmcp.server import ToolPolicy, ToolServer


class ToolConfigError(RuntimeError):
    """The tool configuration or a user tool module is unusable; the service does not start."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModuleEntry(_Strict):
    module: str = Field(min_length=1, description="Importable module name.")
    path: str | None = Field(
        default=None, description="Folder added to sys.path first (relative to tools.yaml)."
    )


class ServerEntry(_Strict):
    """Another MCP server: by Dapr app id (through the sidecar) or by URL."""

    name: str = Field(min_length=1)
    app_id: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(
        default_factory=dict, description="Sent with every request; ${VAR} reads the environment."
    )
    prefix: str = Field(default="", description="Put before its tool names (avoids clashes).")
    allow: list[str] = Field(default_factory=list, description="Its tools to expose; [] = all.")
    timeout_s: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_address(self) -> ServerEntry:
        if (self.app_id is None) == (self.url is None):
            raise ValueError("give exactly one of app_id or url")
        return self


class ToolEntry(_Strict):
    requires_approval: bool | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=600)


class ToolsConfig(_Strict):
    modules: list[ModuleEntry | str] = Field(default_factory=list)
    servers: list[ServerEntry] = Field(default_factory=list)
    tools: dict[str, ToolEntry] = Field(default_factory=dict)

    def module_entries(self) -> list[ModuleEntry]:
        return [m if isinstance(m, ModuleEntry) else ModuleEntry(module=m) for m in self.modules]

    def policies(self) -> dict[str, ToolPolicy]:
        return {
            name: ToolPolicy(requires_approval=t.requires_approval, timeout_s=t.timeout_s)
            for name, t in self.tools.items()
        }


def load_config(path: Path | None) -> tuple[ToolsConfig, Path]:
    """The parsed tools.yaml (empty when ``path`` is None) and the folder it is relative to."""
    if path is None:
        return ToolsConfig(), Path.cwd()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return ToolsConfig.model_validate(raw), path.resolve().parent
    except OSError as exc:
        raise ToolConfigError(f"tools config {path}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        raise ToolConfigError(f"tools config {path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ToolConfigError(f"tools config {path}: {where}") from None


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, env: dict[str, str] | None = None, where: str = "") -> str:
    """Replace ``${VAR}`` with the environment's value; a missing variable is an error."""
    source = os.environ if env is None else env

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in source:
            raise ToolConfigError(f"{where}: environment variable {name} is not set")
        return source[name]

    return _ENV_REF.sub(sub, value)


def import_module(entry: ModuleEntry, base: Path) -> ModuleType:
    """Import a user tool module, naming it in the error when it cannot be imported."""
    if entry.path:
        folder = str((base / entry.path).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        return importlib.import_module(entry.module)
    except Exception as exc:  # anything the module raises on import is a start-up failure
        raise ToolConfigError(
            f"tool module '{entry.module}': cannot import it: {type(exc).__name__}: {exc}"
        ) from exc


def register_module(server: ToolServer, module: ModuleType) -> list[str]:
    """Add a user module's tools: its ``register(server)``, else each function in ``TOOLS``.
    Returns the names of the tools it added."""
    name = module.__name__
    before = {t.name for t in server._tool_manager.list_tools()}
    register: Any = getattr(module, "register", None)
    tools: Any = getattr(module, "TOOLS", None)
    try:
        if callable(register):
            register(server)
        elif isinstance(tools, list | tuple):
            for fn in tools:
                server.add_tool(fn)
        else:
            raise ToolConfigError(
                f"tool module '{name}': has neither register(server) nor a TOOLS list"
            )
    except ToolConfigError:
        raise
    except Exception as exc:
        raise ToolConfigError(
            f"tool module '{name}': adding its tools failed: {type(exc).__name__}: {exc}"
        ) from exc
    added = sorted({t.name for t in server._tool_manager.list_tools()} - before)
    if not added:
        raise ToolConfigError(f"tool module '{name}': added no tools")
    return added
