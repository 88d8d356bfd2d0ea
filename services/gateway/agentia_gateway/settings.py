"""Settings of the gateway service, from the environment; validated at start-up."""

from __future__ import annotations

from agentia.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """The gateway service's settings (the shared ones, so far)."""
