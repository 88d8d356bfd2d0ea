"""Agent definitions, the offline model and the built-in tools, without the mesh."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from agents import Agent, RunConfig, Runner

from agentia.paths import repo_root
from agentia.safe_math import safe_eval
from agentia_runner.execute import execute
from agentia_runner.offline_model import OfflineModelProvider
from agentia_runner.registry import Registry, RegistryError

CFG = RunConfig(model_provider=OfflineModelProvider(), tracing_disabled=True)


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_shipped_agents_load() -> None:
    registry = Registry.load(repo_root() / "agents")
    assert {"assistant", "triage", "billing", "support", "classifier"} <= set(registry.specs)
    assert [a.name for a in registry.agent("triage").handoffs] == ["billing", "support"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: Bad Name\ninstructions: x\n", "bad.yaml: field 'name'"),
        ("name: a\n", "bad.yaml: field 'instructions'"),
        ("name: a\ninstructions: x\nhandoffs: [ghost]\n", "a: field 'handoffs': unknown agent"),
        ("name: a\ninstructions: x\nbuiltin_tools: [rm_rf]\n", "field 'builtin_tools'"),
        ("name: a\ninstructions: x\ncolour: red\n", "bad.yaml: field 'colour'"),
        ("name: a\ninstructions: x\noutput_type: {type: 12}\n", "field 'output_type'"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_definitions_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    _write(tmp_path, "bad.yaml", text)
    with pytest.raises(RegistryError, match=message.replace("[", r"\[")):
        Registry.load(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist"):
        Registry.load(tmp_path / "nope")


def test_safe_eval_does_arithmetic_and_nothing_else() -> None:
    assert safe_eval("2 * (3 + 4)") == 14
    assert safe_eval("7 / 2") == 3.5
    for bad in ("__import__('os')", "a + 1", "2 ** 1000", "1 +"):
        with pytest.raises(ValueError):
            safe_eval(bad)


def test_offline_model_echoes_and_says_it_is_offline() -> None:
    result = asyncio.run(Runner.run(Agent(name="a", instructions="x"), "hi there", run_config=CFG))
    assert result.final_output == "[offline model] You said: hi there"


def test_execute_reports_steps_and_usage() -> None:
    registry = Registry.load(repo_root() / "agents")
    seen: list[tuple[str, dict[str, object]]] = []

    async def emit(kind: str, data: dict[str, object]) -> None:
        seen.append((kind, data))

    outcome = asyncio.run(
        execute(registry.agent("assistant"), 'calculator {"expression": "1+1"}', CFG, emit)
    )
    assert (
        outcome.status == "success" and outcome.output == "[offline model] calculator returned: 2"
    )
    assert [k for k, _ in seen if k.startswith("tool.")] == ["tool.call", "tool.result"]
    assert outcome.usage["requests"] == 2
    # The same usage, split by the agent definition's model name.
    assert outcome.models == {"offline": outcome.usage}


def test_execute_splits_usage_by_model_across_a_handoff() -> None:
    async def emit(kind: str, data: dict[str, object]) -> None:
        return None

    expert = Agent(name="expert", instructions="x", model="offline:large")
    front = Agent(name="front", instructions="x", model="offline:small", handoffs=[expert])
    outcome = asyncio.run(execute(front, "please ask expert", CFG, emit))
    assert outcome.status == "success" and outcome.last_agent == "expert"
    assert set(outcome.models) == {"offline:small", "offline:large"}
    assert outcome.models["offline:small"]["requests"] == 1
    assert outcome.models["offline:large"]["requests"] == 1
    for field in ("input_tokens", "output_tokens", "requests"):
        assert sum(m[field] for m in outcome.models.values()) == outcome.usage[field]


def test_execute_turns_a_guardrail_into_an_error_outcome() -> None:
    registry = Registry.load(repo_root() / "agents")

    async def emit(kind: str, data: dict[str, object]) -> None:
        return None

    outcome = asyncio.run(execute(registry.agent("triage"), "my password is x", CFG, emit))
    assert outcome.status == "error" and "password" in (outcome.error or "")
