"""Settings of the memory service, from the environment; validated at start-up.

The database URL is not a setting: it is read from the secret store through the sidecar.
"""

from __future__ import annotations

from agentia.settings import ServiceSettings


class MemorySettings(ServiceSettings):
    """The memory service's settings (the shared ones, so far)."""
