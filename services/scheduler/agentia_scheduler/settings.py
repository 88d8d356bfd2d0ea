"""Settings of the scheduler service, from the environment; validated at start-up."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentia import names
from agentia.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    """The scheduler service's settings: the shared ones, and the broker's queue type."""

    broker_queue_type: Literal["classic", "quorum"] = Field(
        default="classic",
        validation_alias=names.BROKER_QUEUE_TYPE_ENV,
        description="The queue type a drain asks the broker for: quorum on a RabbitMQ "
        "cluster (the local mesh's cluster broker profile), classic on a single broker.",
    )
