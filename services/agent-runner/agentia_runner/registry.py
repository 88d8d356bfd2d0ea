"""Agent definitions: one YAML file per agent, validated at start-up, turned into SDK agents.

Users add or change agents by editing files in the agents folder (``AGENTIA_AGENTS_DIR``),
never the service. A bad file stops start-up with a message naming the file and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrail,
    ModelSettings,
    OutputGuardrail,
    RunContextWrapper,
)
from agents.agent_output import AgentOutputSchemaBase
from agents.exceptions import ModelBehaviorError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentia_runner.builtin_tools import BUILTIN_TOOLS
from agentia_runner.mcp_tools import McpServers


class RegistryError(ValueError):
    """An agent definition is invalid; the message names the file and the field."""


class ToolServer(BaseModel):
    """An MCP server reached through Dapr service invocation, and the tools allowed from it."""

    model_config = ConfigDict(extra="forbid")
    app_id: str = Field(description="Dapr app id of the MCP server.")
    allow: list[str] = Field(default_factory=list, description="Tool names allowed; empty: all.")


class Guardrail(BaseModel):
    """A declarative guardrail: trip on blocked words, or on too long a text."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["block_words", "max_chars"] = Field(description="What the guardrail checks.")
    words: list[str] = Field(default_factory=list, description="For block_words.")
    max_chars: int | None = Field(default=None, gt=0, description="For max_chars.")


class AgentSpec(BaseModel):
    """One agent definition file."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$", description="Unique agent name.")
    description: str = Field(default="", description="Shown in the agents listing.")
    instructions: str = Field(min_length=1, description="The agent's system prompt.")
    model: str = Field(
        default="offline",
        description="'offline', 'openai:<model>' or 'compatible:<model>' (AGENTIA_MODEL_BASE_URL).",
    )
    model_settings: dict[str, Any] = Field(default_factory=dict, description="SDK ModelSettings.")
    tool_use_behavior: Literal["run_llm_again", "stop_on_first_tool"] = Field(
        default="run_llm_again",
        description="After a tool call: ask the model again (default), or end the run with the "
        "first tool's output as the answer (SDK's tool_use_behavior).",
    )
    builtin_tools: list[str] = Field(default_factory=list, description="Local function tools.")
    mcp_servers: list[ToolServer] = Field(default_factory=list, description="MCP tool servers.")
    handoffs: list[str] = Field(default_factory=list, description="Agents it may hand off to.")
    input_guardrails: list[Guardrail] = Field(default_factory=list, description="On the input.")
    output_guardrails: list[Guardrail] = Field(default_factory=list, description="On the output.")
    output_type: dict[str, Any] | None = Field(
        default=None, description="JSON schema (an object) of a structured final output."
    )


class JsonSchemaOutput(AgentOutputSchemaBase):
    """A structured output type given as a JSON schema in the definition file."""

    def __init__(self, agent: str, schema: dict[str, Any]) -> None:
        self._name = f"{agent}_output"
        self._schema = schema

    def is_plain_text(self) -> bool:
        return False

    def name(self) -> str:
        return self._name

    def json_schema(self) -> dict[str, Any]:
        return self._schema

    def is_strict_json_schema(self) -> bool:
        return False

    def validate_json(self, json_str: str) -> Any:
        try:
            value = json.loads(json_str)
            jsonschema.validate(value, self._schema)
        except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
            raise ModelBehaviorError(f"output does not match {self._name}: {exc}") from exc
        return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _check(rule: Guardrail, text: str) -> str | None:
    if rule.kind == "block_words":
        hits = [w for w in rule.words if w.lower() in text.lower()]
        return f"blocked words: {', '.join(hits)}" if hits else None
    if rule.max_chars is not None and len(text) > rule.max_chars:
        return f"longer than {rule.max_chars} characters"
    return None


def _input_guardrail(rule: Guardrail) -> InputGuardrail[Any]:
    async def run(
        ctx: RunContextWrapper[Any], agent: Agent[Any], data: Any
    ) -> GuardrailFunctionOutput:
        reason = _check(rule, _text(data))
        return GuardrailFunctionOutput(output_info=reason, tripwire_triggered=reason is not None)

    return InputGuardrail(guardrail_function=run, name=f"input_{rule.kind}")


def _output_guardrail(rule: Guardrail) -> OutputGuardrail[Any]:
    async def run(
        ctx: RunContextWrapper[Any], agent: Agent[Any], data: Any
    ) -> GuardrailFunctionOutput:
        reason = _check(rule, _text(data))
        return GuardrailFunctionOutput(output_info=reason, tripwire_triggered=reason is not None)

    return OutputGuardrail(guardrail_function=run, name=f"output_{rule.kind}")


class Registry:
    """All agent definitions, validated as a whole (handoffs must name known agents)."""

    def __init__(self, specs: dict[str, AgentSpec], mcp: McpServers | None = None) -> None:
        self.specs = specs
        self.mcp = mcp
        self._agents: dict[str, Agent[Any]] = {}

    @classmethod
    def load(cls, folder: Path, mcp: McpServers | None = None) -> Registry:
        if not folder.is_dir():
            raise RegistryError(f"agents folder {folder} does not exist")
        specs: dict[str, AgentSpec] = {}
        for path in sorted(folder.glob("*.y*ml")) + sorted(folder.glob("*.json")):
            try:
                raw = yaml.safe_load(path.read_text())
                spec = AgentSpec.model_validate(raw)
            except yaml.YAMLError as exc:
                raise RegistryError(f"{path.name}: not valid YAML/JSON: {exc}") from None
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(file)"
                raise RegistryError(f"{path.name}: field '{where}': {first['msg']}") from None
            if spec.name in specs:
                raise RegistryError(f"{path.name}: agent '{spec.name}' is defined twice")
            specs[spec.name] = spec
        for spec in specs.values():
            for target in spec.handoffs:
                if target not in specs:
                    raise RegistryError(f"{spec.name}: field 'handoffs': unknown agent '{target}'")
            for tool in spec.builtin_tools:
                if tool not in BUILTIN_TOOLS:
                    raise RegistryError(
                        f"{spec.name}: field 'builtin_tools': unknown tool '{tool}' "
                        f"(known: {', '.join(BUILTIN_TOOLS)})"
                    )
            if spec.output_type is not None:
                try:
                    jsonschema.Draft202012Validator.check_schema(spec.output_type)
                except jsonschema.SchemaError as exc:
                    raise RegistryError(
                        f"{spec.name}: field 'output_type': {exc.message}"
                    ) from None
        return cls(specs, mcp)

    def agent(self, name: str) -> Agent[Any]:
        """The SDK agent for ``name`` (built once, with its handoffs)."""
        if name not in self.specs:
            raise KeyError(name)
        if name not in self._agents:
            spec = self.specs[name]
            agent: Agent[Any] = Agent(
                name=spec.name,
                handoff_description=spec.description or None,
                instructions=spec.instructions,
                model=spec.model,
                model_settings=ModelSettings(**spec.model_settings),
                tool_use_behavior=spec.tool_use_behavior,
                tools=[BUILTIN_TOOLS[t] for t in spec.builtin_tools],
                input_guardrails=[_input_guardrail(g) for g in spec.input_guardrails],
                output_guardrails=[_output_guardrail(g) for g in spec.output_guardrails],
                output_type=JsonSchemaOutput(spec.name, spec.output_type)
                if spec.output_type
                else None,
                mcp_servers=[self.mcp.server(t.app_id, t.allow) for t in spec.mcp_servers]
                if self.mcp
                else [],
            )
            self._agents[name] = agent
            agent.handoffs = [self.agent(h) for h in spec.handoffs]
        return self._agents[name]

    def mcp_servers_of(self, name: str) -> list[Any]:
        """MCP servers used by ``name`` and every agent it can hand off to."""
        seen: set[str] = set()
        todo, out = [name], []
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            agent = self.agent(current)
            out += list(agent.mcp_servers)
            todo += self.specs[current].handoffs
        return out
