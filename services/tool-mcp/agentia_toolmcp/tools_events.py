"""publish_event: an agent publishes an event to a topic on the allow-list (none by default).
Through tool-mcp's own sidecar; the event is a :class:`agentia.events.ToolEvent`."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from agentia.dapr import DaprError
from agentia.events import ToolEvent
from agentia_toolmcp.server import ToolServer, effect_key
from agentia_toolmcp.sidecar import Sidecar

# Publishing cannot be taken back and sending twice makes two events.
PUBLISH = ToolAnnotations(
    title="Publish an event",
    readOnlyHint=False,
    destructiveHint=True,
    idempotentHint=False,
    openWorldHint=False,
)


def check_topic(topic: str, allowed: list[str]) -> None:
    """Refuse a topic that is not on the allow-list, saying which ones are."""
    if topic not in allowed:
        offer = ", ".join(sorted(allowed)) or "none are configured"
        raise ToolError(f"topic: '{topic}' is not an allowed topic (allowed: {offer})")


def register(server: ToolServer, sidecar: Sidecar, allowed_topics: list[str]) -> None:
    """Add publish_event, limited to ``allowed_topics``."""

    async def publish_event(
        topic: Annotated[str, Field(min_length=1, max_length=200)],
        data: dict[str, Any],
        ctx: Context[Any, Any],
    ) -> dict[str, Any]:
        """Publish an event (a JSON object) to an allowed topic. Returns its event id."""
        check_topic(topic, allowed_topics)
        client = sidecar()
        event = ToolEvent(topic=topic, data=data, published_by=client.app_id)
        key = effect_key(ctx)
        if key is not None:
            # A retried run publishing again sends the same event id: consumers see it once.
            event.event_id = hashlib.sha256(key.encode()).hexdigest()[:32]
        try:
            await client.publish(topic, event)
        except DaprError as exc:
            raise ToolError(f"publish_event: the broker did not take it: {exc.reason}") from None
        return {"topic": topic, "event_id": event.event_id}

    server.add_tool(publish_event, annotations=PUBLISH)
