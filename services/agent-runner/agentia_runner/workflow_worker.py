"""agent-runner's Dapr Workflow worker: hosts the workflows of ``agentia_workflows``.

The worker talks to this service's own sidecar over gRPC (with the Dapr API token); the
sidecar keeps workflow state in the PostgreSQL actor state store. Activities run on the
app's event loop, where the registry, the model provider and the Dapr client live.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any

from agents import Agent, Model
from dapr.ext.workflow import WorkflowRuntime
from fastapi import FastAPI

from agentia import names
from agentia.contracts import memory as memory_api
from agentia.dapr import DaprClient
from agentia.events import Kind, RunEvent, Status
from agentia.service import dapr_client
from agentia_runner.memory_session import memory_errors
from agentia_runner.models import AgentiaModelProvider
from agentia_runner.registry import Registry
from agentia_workflows.activities import AgentActivities
from agentia_workflows.chat_activities import ChatActivities
from agentia_workflows.register import register

log = logging.getLogger(__name__)


class RegistryCatalog:
    """Agents from the registry, models from the provider (the activities' Catalog)."""

    def __init__(self, registry: Registry, provider: AgentiaModelProvider) -> None:
        self.registry, self.provider = registry, provider

    def agent(self, agent_id: str) -> Agent[Any]:
        return self.registry.agent(agent_id)

    def model(self, name: str) -> Model:
        return self.provider.get_model(name)


class StateLedger:
    """Step records in the PostgreSQL state store (the activities' StepLedger)."""

    def __init__(self, client: DaprClient) -> None:
        self.client = client

    async def get(self, key: str) -> dict[str, Any] | None:
        item = await self.client.get_state(names.STATE_STORE, key)
        return dict(item.value) if item is not None else None

    async def save(self, key: str, value: dict[str, Any]) -> None:
        await self.client.save_state(names.STATE_STORE, key, value)


class MemoryTranscripts:
    """Transcripts in the memory service's threads (the chat activities' Transcripts)."""

    def __init__(self, client: DaprClient) -> None:
        self.client = client
        self.memory = memory_api.MemoryClient(client.call)

    async def latest(self, thread_id: str, limit: int) -> list[dict[str, Any]]:
        with memory_errors():
            found = await self.memory.items(thread_id, memory_api.ItemsQuery(limit=limit))
        return found.items

    async def cut(self, thread_id: str, count: int) -> None:
        with memory_errors():
            # The thread exists afterwards, either way.
            await self.memory.create_thread(memory_api.ThreadCreate(thread_id=thread_id))
            await self.memory.truncate(thread_id, memory_api.Truncate(count=count))

    async def append(self, thread_id: str, items: list[dict[str, Any]]) -> int:
        with memory_errors():
            if not items:
                return (await self.memory.thread(thread_id)).item_count
            add = memory_api.ItemsAdd(items=items)
            return (await self.memory.add_items(thread_id, add)).item_count


class PublishedEvents:
    """A streamed chat message's events on ``runs.events`` (the chat activities' RunEvents);
    the event id is the run id and seq, so a re-published event is a duplicate."""

    def __init__(self, client: DaprClient) -> None:
        self.client = client

    async def publish(
        self,
        run_id: str,
        seq: int,
        kind: str,
        status: str,
        data: dict[str, Any],
        thread_id: str | None = None,
    ) -> None:
        event = RunEvent.of(
            event_id=f"{run_id}.{seq}",
            run_id=run_id,
            seq=seq,
            kind=kind,
            status=status,
            thread_id=thread_id,
            data=data,
        )
        await self.client.publish(names.TOPIC_RUNS_EVENTS, event)


class PublishedUsage:
    """A workflow's model-turn usage on ``runs.events``, for the gateway to count against the
    key that started the workflow; the usage id (the turn's, kept in its step record) is the
    event's run id, which the gateway counts once."""

    def __init__(self, client: DaprClient) -> None:
        self.client = client

    async def report(
        self, usage_id: str, instance_id: str, model: str, usage: dict[str, int]
    ) -> None:
        event = RunEvent.of(
            event_id=f"{usage_id}.usage",
            run_id=usage_id,
            seq=0,
            kind=Kind.MODEL_USAGE,
            status=Status.RUNNING,
            data={"instance_id": instance_id, "usage": usage, "models": {model: usage}},
        )
        await self.client.publish(names.TOPIC_RUNS_EVENTS, event)


class WorkflowWorker:
    """Starts the runtime in the background (start-up never waits on it) and stops it."""

    def __init__(self, app: FastAPI) -> None:
        settings = app.state.settings
        self.loop = asyncio.get_running_loop()
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self.runtime = WorkflowRuntime(
            host=settings.dapr_host,
            port=str(settings.dapr_grpc_port),
            worker_ready_timeout=60.0,
        )
        activities = AgentActivities(
            RegistryCatalog(app.state.registry, app.state.model_provider),
            StateLedger(dapr_client(app)),
            PublishedUsage(dapr_client(app)),
        )
        client = dapr_client(app)
        chats = ChatActivities(activities, MemoryTranscripts(client), PublishedEvents(client))
        register(self.runtime, activities, chats, self._run_on_app_loop)
        self._thread = threading.Thread(target=self._start, name="workflow-worker", daemon=True)

    async def _run_on_app_loop(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def _start(self) -> None:
        while not self._stopping.is_set():
            try:
                self.runtime.start()  # type: ignore[no-untyped-call]
            except Exception as exc:  # the sidecar may not serve workflows yet: try again
                log.warning("workflow worker not started; retrying", extra={"why": str(exc)})
                self._stopping.wait(2.0)
                continue
            self.ready.set()
            log.info("workflow worker started")
            return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self.ready.is_set():
            self.runtime.shutdown()  # type: ignore[no-untyped-call]


async def start_workflows(app: FastAPI) -> None:
    """Start the worker and the client the operations routes use."""
    from dapr.conf import settings as dapr_settings
    from dapr.ext.workflow.aio import DaprWorkflowClient

    settings = app.state.settings
    # The SDK reads the token from its own settings; ours come from the validated settings.
    token = settings.dapr_api_token.get_secret_value()
    dapr_settings.DAPR_API_TOKEN = token  # type: ignore[attr-defined]
    app.state.workflow_worker = WorkflowWorker(app)
    app.state.workflow_worker.start()
    app.state.workflow_client = DaprWorkflowClient(
        host=settings.dapr_host, port=str(settings.dapr_grpc_port)
    )


async def stop_workflows(app: FastAPI) -> None:
    await asyncio.to_thread(app.state.workflow_worker.stop)
