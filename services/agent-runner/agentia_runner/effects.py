"""Keys for what a run's tool calls do outside the run, so that a retried run's repeat of a
call is the same call to the tool: the run id, the tool, a digest of its arguments and how
many times the run has made that same call (not the attempt, not the order of parallel
calls). agent-runner sends the key in each MCP call's ``_meta`` (``names.MCP_EFFECT_KEY``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agents.mcp.util import MCPToolMetaContext

from agentia import names


@dataclass
class RunEffects:
    """The run context of one attempt (``RunContextWrapper.context``): its effect keys."""

    run_id: str
    made: Counter[tuple[str, str]] = field(default_factory=Counter)

    def key(self, tool: str, arguments: dict[str, Any] | None) -> str:
        text = json.dumps(arguments or {}, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.made[(tool, digest)] += 1
        return f"{self.run_id}:{tool}:{digest}:{self.made[(tool, digest)]}"


def effect_meta(ctx: MCPToolMetaContext) -> dict[str, Any] | None:
    """The SDK's ``tool_meta_resolver``: the call's effect key, when it runs in a run."""
    effects = getattr(ctx.run_context, "context", None)
    if not isinstance(effects, RunEffects):
        return None
    return {names.MCP_EFFECT_KEY: effects.key(ctx.tool_name, ctx.arguments)}
