"""The local model profile of the mesh: llama-server as one more supervised process.

``agentia up --model local`` (or ``AGENTIA_MODEL_PROFILE=local``) runs the model `agentia
model build` cached (agentia_tools.model_build) on loopback, behind an API key only
agent-runner is given, and points agent-runner's ``compatible:`` provider at it
(``AGENTIA_MODEL_BASE_URL``). Agents whose ``model`` is ``compatible:smollm2-135m`` use it;
every other agent is unchanged (``offline`` stays the default).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Final

from agentia import names
from agentia_tools import model_build
from agentia_tools.runtime.health import Probe, http_probe
from agentia_tools.runtime.programs import ProgramSpec

PROFILE_ENV: Final = "AGENTIA_MODEL_PROFILE"
PROFILES: Final = ("offline", "local")
GROUP: Final = "model"
# One context window shared by PARALLEL slots: each request sees CONTEXT / PARALLEL tokens.
CONTEXT: Final = 8192
PARALLEL: Final = 2


class ProfileError(ValueError):
    """An unknown profile was asked for."""


def profile(asked: str | None = None) -> str:
    """The model profile: ``asked`` (the CLI's ``--model``), else ``$AGENTIA_MODEL_PROFILE``,
    else ``offline`` (no model server)."""
    value = (asked or os.environ.get(PROFILE_ENV) or "offline").strip().lower()
    if value not in PROFILES:
        raise ProfileError(f"unknown model profile '{value}'; one of: {', '.join(PROFILES)}")
    return value


def base_url() -> str:
    return f"http://127.0.0.1:{names.MODEL_SERVER_PORT}/v1"


def api_key_file(home: Path) -> Path:
    return home / "model" / "api-key"


def ensure_api_key(home: Path) -> str:
    """The key llama-server asks for (made once, readable by this user only)."""
    path = api_key_file(home)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def threads() -> int:
    return max(1, min(os.cpu_count() or 2, 8))


def server_spec(home: Path, model: model_build.LocalModel) -> ProgramSpec:
    """llama-server on loopback: the OpenAI-compatible API at :func:`base_url`."""
    ensure_api_key(home)
    return ProgramSpec(
        name=names.MODEL_SERVER,
        group=GROUP,
        command=[
            str(model.server),
            "--model",
            str(model.gguf),
            "--alias",
            model.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(names.MODEL_SERVER_PORT),
            "--api-key-file",
            str(api_key_file(home)),
            # Tools reach the prompt and tool calls are parsed back (ChatML with Hermes-style
            # <tool_call> blocks, which SmolLM2's own template lacks).
            "--jinja",
            "--chat-template-file",
            str(model.template),
            "--ctx-size",
            str(CONTEXT),
            "--parallel",
            str(PARALLEL),
            "--threads",
            str(threads()),
            "--metrics",
        ],
        directory=home,
        # Without it, OpenMP's spinning threads starve everything else on a loaded machine
        # (measured: 1.3 tokens/s instead of 37 on 2 cores with the mesh running).
        environment={"OMP_WAIT_POLICY": "PASSIVE"},
        priority=250,
        stopwaitsecs=10,
    )


def runner_environment(home: Path) -> dict[str, str]:
    """What agent-runner needs to reach the local model through its ``compatible:`` provider."""
    return {
        "AGENTIA_MODEL_BASE_URL": base_url(),
        "AGENTIA_MODEL_API_KEY": ensure_api_key(home),
    }


def with_profile(home: Path, specs: list[ProgramSpec], chosen: str) -> list[ProgramSpec]:
    """``specs`` with the model server added and agent-runner pointed at it (``local``), or
    unchanged (``offline``). Raises :class:`model_build.ModelBuildError` when not built."""
    if chosen != "local":
        return specs
    model = model_build.find()
    env = runner_environment(home)
    out = [
        replace(s, environment={**s.environment, **env}) if s.name == names.AGENT_RUNNER else s
        for s in specs
    ]
    return [*out, server_spec(home, model)]


def probe() -> Probe:
    """llama-server's /health: 200 once the model is loaded (it needs no key)."""
    return http_probe(
        names.MODEL_SERVER, GROUP, f"http://127.0.0.1:{names.MODEL_SERVER_PORT}/health"
    )
