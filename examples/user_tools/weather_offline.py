"""An example user tool module for tool-mcp: offline "weather" from a fixed table.

Load it without editing the service, either with the environment::

    AGENTIA_TOOL_MODULES=weather_offline PYTHONPATH=examples/user_tools

or in tools.yaml (``AGENTIA_TOOLS_CONFIG``)::

    modules:
      - module: weather_offline
        path: examples/user_tools

A module offers its tools with ``register(server)`` (full control: names, annotations,
``_meta``) or with a list ``TOOLS`` of typed functions. This one uses ``register``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

# Typical conditions per city, so the example works with no network.
_CLIMATE: dict[str, tuple[float, str]] = {
    "paris": (14.0, "cloudy"),
    "lisbon": (19.5, "sunny"),
    "oslo": (4.0, "snow"),
    "nairobi": (21.0, "rain"),
}


def forecast(
    city: Annotated[str, Field(min_length=1, max_length=100, description="City name.")],
    unit: Literal["celsius", "fahrenheit"] = "celsius",
) -> dict[str, Any]:
    """Typical weather for a city (an offline table: paris, lisbon, oslo, nairobi)."""
    known = _CLIMATE.get(city.strip().lower())
    if known is None:
        raise ToolError(f"city: no weather known for '{city}' (try: {', '.join(_CLIMATE)})")
    temp, sky = known
    if unit == "fahrenheit":
        temp = round(temp * 9 / 5 + 32, 1)
    return {"city": city, "temperature": temp, "unit": unit, "sky": sky}


def register(server: Any) -> None:
    """Called once by tool-mcp at start-up with its MCP server."""
    server.add_tool(
        forecast,
        name="weather_forecast",
        annotations=ToolAnnotations(title="Weather forecast", readOnlyHint=True),
    )
