"""One drain of a topic's backlog through this process's sidecar.

The scheduler service calls :func:`drain_once` when a ``drain`` schedule fires and on
``POST /internal/drains``; the Kubernetes CronJob runs this module on its own:

    python -m agentia_scheduler.drain [--batch-size 20] [--idle-s 2] [--max-seconds 600]

It reads APP_ID, DAPR_HOST, DAPR_HTTP_PORT, DAPR_GRPC_PORT and DAPR_API_TOKEN, prints the
report as one JSON line and exits 0, or 1 when the drain stopped on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

import httpx
from pydantic import SecretStr, ValidationError

from agentia import names
from agentia.contracts import InvokeError
from agentia.contracts.runner import RunnerClient
from agentia.contracts.scheduler import DrainReport, DrainRequest
from agentia.dapr import DaprClient, DaprError, ETagMismatch
from agentia.dapr_stream import StreamClosed, TopicStream
from agentia.events import DeadLetter, RunRequested
from agentia_scheduler.budget_check import OwnerGone, budget_refusal
from agentia_scheduler.draining import Delivery, Refusal, drain

log = logging.getLogger(__name__)


PARK_ATTEMPTS = 8


class _Sink:
    """Where drained events go: their runs to ``runs.requested``, the unreadable ones to the
    state store as dead letters (nothing taken from the queue is dropped)."""

    def __init__(self, client: DaprClient, topic: str) -> None:
        self._client = client
        self._topic = topic
        self._parked = f"drain-parked:{topic}"

    async def start_run(self, req: RunRequested) -> None:
        await self._client.publish(names.TOPIC_RUNS_REQUESTED, req)

    async def refused(self, req: RunRequested) -> Refusal | None:
        """Whether the run's key may start it now, as the gateway (which owns budgets) says."""
        try:
            reason = await budget_refusal(self._client, str(req.owner), req.agent_id)
        except OwnerGone:
            return Refusal(f"the run's key {req.owner} is gone (revoked)", final=True)
        return Refusal(reason) if reason is not None else None

    async def park(self, req: RunRequested) -> None:
        """Keep a run that may not start yet, for the next drain (one document per topic)."""
        for _ in range(PARK_ATTEMPTS):
            item = await self._client.get_state(names.STATE_STORE, self._parked)
            parked = dict(item.value.get("runs", {})) if item else {}
            parked[req.run_id] = req.model_dump(mode="json")
            try:
                await self._client.save_over(
                    names.STATE_STORE, self._parked, {"runs": parked}, item
                )
                return
            except ETagMismatch:
                continue
        raise DaprError(409, f"{self._parked} contended")

    async def unpark(self) -> int:
        """Publish the parked runs on the topic again; a publish that fails leaves its run
        parked. Published before it is unparked: a crash in between publishes it twice,
        and the run id makes the second a duplicate."""
        try:
            item = await self._client.get_state(names.STATE_STORE, self._parked)
            if item is None or not item.value.get("runs"):
                return 0
            sent = []
            for run_id, body in item.value["runs"].items():
                await self._client.publish(self._topic, RunRequested.model_validate(body))
                sent.append(run_id)
            for _ in range(PARK_ATTEMPTS):
                left = {k: v for k, v in item.value["runs"].items() if k not in sent}
                try:
                    await self._client.save_state(
                        names.STATE_STORE, self._parked, {"runs": left}, etag=item.etag
                    )
                    return len(sent)
                except ETagMismatch:
                    item = await self._client.get_state(names.STATE_STORE, self._parked)
                    if item is None:
                        return len(sent)
        except (DaprError, httpx.HTTPError) as exc:
            log.warning("parked runs not published again", extra={"why": str(exc)[:200]})
            raise
        return len(sent)

    async def finished(self, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` agent-runner's ledger has as finished."""
        done = set()
        runner = RunnerClient(self._client.call)
        for run_id in run_ids:
            try:
                if (await runner.ledger(run_id)).final:
                    done.add(run_id)
            except InvokeError:
                continue  # not known (yet), or agent-runner refused: not finished
        return done

    async def keep_dead_letter(self, event: Delivery, reason: str) -> None:
        dlq = names.dead_letter(self._topic)
        letter = DeadLetter(topic=dlq, cloudevent={"id": event.id, "data": _text(event)})
        body = {**letter.model_dump(mode="json"), "reason": reason}
        await self._client.save_state(names.STATE_STORE, f"dlq:{dlq}:{event.id}", body)
        log.warning("drained event kept as a dead letter", extra={"event_id": event.id})


def _text(event: Delivery) -> Any:
    try:
        return event.json()
    except ValueError:
        return None


def stream(
    grpc_address: str, api_token: str | None, topic: str, queue_type: str = "classic"
) -> TopicStream:
    """The streaming subscription a drain of ``topic`` reads, on its one durable queue
    (``queue_type`` as the broker declared it: a quorum queue on a RabbitMQ cluster)."""
    metadata = {"queueName": names.drain_queue(topic)}
    if queue_type != "classic":
        metadata["queueType"] = queue_type
    return TopicStream(grpc_address, api_token, names.PUBSUB_DRAIN, topic, metadata=metadata)


async def drain_once(
    client: DaprClient,
    grpc_address: str,
    api_token: str | None,
    req: DrainRequest,
    queue_type: str = "classic",
) -> DrainReport:
    """Drain ``req.topic``'s backlog in batches, within the request's limits."""
    try:
        async with stream(grpc_address, api_token, req.topic, queue_type) as source:
            report = await drain(source, _Sink(client, req.topic), req)
    except StreamClosed as exc:
        report = DrainReport(
            topic=req.topic,
            received=0,
            started=0,
            dead_lettered=0,
            batches=0,
            unfinished=0,
            stopped=f"error: subscription refused or lost: {exc.reason}",
            took_s=0.0,
        )
    log.info("drain finished", extra=report.model_dump())
    return report


def _args(argv: list[str] | None) -> DrainRequest:
    parser = argparse.ArgumentParser(prog="python -m agentia_scheduler.drain")
    parser.add_argument("--topic", default=names.TOPIC_RUNS_BATCH)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--idle-s", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    ns = parser.parse_args(argv)
    try:
        return DrainRequest(
            topic=ns.topic,
            batch_size=ns.batch_size,
            idle_s=ns.idle_s,
            max_seconds=ns.max_seconds,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        parser.error(f"{first['loc'][0]}: {first['msg']}")
        raise  # unreachable: parser.error exits


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"error: {name} is not set (the sidecar's address and token come from it)")
    return value


async def _main(req: DrainRequest) -> DrainReport:
    host = os.environ.get("DAPR_HOST", "127.0.0.1")
    token = SecretStr(_env("DAPR_API_TOKEN"))
    http = f"http://{host}:{_env('DAPR_HTTP_PORT')}"
    app_id = os.environ.get("APP_ID", names.SCHEDULER_DRAIN)
    async with DaprClient(http, token.get_secret_value(), app_id, timeout=20) as client:
        await client.wait_outbound()
        grpc_address = f"{host}:{_env('DAPR_GRPC_PORT')}"
        queue_type = os.environ.get(names.BROKER_QUEUE_TYPE_ENV, "classic")
        return await drain_once(client, grpc_address, token.get_secret_value(), req, queue_type)


def main(argv: list[str] | None = None) -> int:
    req = _args(argv)
    report = asyncio.run(_main(req))
    print(json.dumps(report.model_dump()), flush=True)
    return 1 if report.stopped.startswith("error") else 0


if __name__ == "__main__":
    sys.exit(main())
