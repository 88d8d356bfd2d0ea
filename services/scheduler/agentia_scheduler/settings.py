"""Settings of the scheduler service, from the environment; validated at start-up."""

from __future__ import annotations

from agentia.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    """The scheduler service's settings (the shared ones, so far)."""
