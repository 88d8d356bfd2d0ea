"""Pull events from a topic through the sidecar: Dapr's streaming subscription (gRPC).

A declarative subscription has the sidecar push every event to the app as it arrives. A
drain wants the opposite: open a subscription, take a bounded batch, answer each event,
close. Dapr's ``SubscribeTopicEventsAlpha1`` does that over one bidirectional gRPC stream.

Events are answered one by one (success, retry or drop); the sidecar acknowledges an
event to the broker only when its answer arrives. Whatever the stream was handed but did
not answer when it closes goes back to the broker's queue, so closing early loses nothing.
The Python SDK's own subscription class prints to stdout and reconnects by itself; this
one is small, quiet and lets the caller decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import grpc
from dapr.proto import api_service_v1, api_v1, appcallback_v1

from agentia.dapr import DaprError

Answer = Literal["success", "retry", "drop"]
_STATUS = {
    "success": appcallback_v1.TopicEventResponse.SUCCESS,
    "retry": appcallback_v1.TopicEventResponse.RETRY,
    "drop": appcallback_v1.TopicEventResponse.DROP,
}
# After the last answer is written, give the sidecar a moment to pass it to the broker
# before the stream ends (an ack racing the close would only cause a redelivery).
SETTLE_S = 0.3
CLOSE_WAIT_S = 5.0


@dataclass(frozen=True)
class StreamedEvent:
    """One event handed over by the stream (the CloudEvent's attributes and its data)."""

    id: str
    topic: str
    type: str
    data: bytes
    content_type: str

    def json(self) -> Any:
        """The data parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return json.loads(self.data)


class StreamClosed(DaprError):
    """The sidecar ended the stream (or refused to open it); ``reason`` says why."""


_END = object()


class TopicStream:
    """``async with TopicStream(...) as stream``: ``await stream.next(timeout)``, then
    ``await stream.answer(event, "success")`` for each event taken."""

    def __init__(
        self,
        grpc_address: str,
        api_token: str | None,
        pubsub: str,
        topic: str,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self._address = grpc_address
        self._auth = [("dapr-api-token", api_token)] if api_token else []
        self._initial = api_v1.SubscribeTopicEventsRequestAlpha1(
            initial_request=api_v1.SubscribeTopicEventsRequestInitialAlpha1(
                pubsub_name=pubsub, topic=topic, metadata=metadata or {}
            )
        )
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._closed_why = ""

    async def __aenter__(self) -> TopicStream:
        self._channel = grpc.aio.insecure_channel(self._address)
        stub = api_service_v1.DaprStub(self._channel)  # type: ignore[no-untyped-call]
        self._call = stub.SubscribeTopicEventsAlpha1(metadata=self._auth)
        try:
            await self._call.write(self._initial)
            first = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            await self._channel.close()
            raise StreamClosed(_http_status(exc.code()), exc.details() or str(exc.code())) from None
        if first is grpc.aio.EOF or not first.HasField("initial_response"):
            await self._channel.close()
            raise StreamClosed(502, "the sidecar did not confirm the subscription")
        self._reader = asyncio.create_task(self._read_all())
        return self

    async def _read_all(self) -> None:
        # Reads run in their own task: cancelling a pending read would cancel the stream.
        try:
            while True:
                msg = await self._call.read()
                if msg is grpc.aio.EOF:
                    self._closed_why = "the sidecar ended the stream"
                    break
                if msg.HasField("event_message"):
                    await self._inbox.put(_event(msg.event_message))
        except grpc.aio.AioRpcError as exc:
            self._closed_why = exc.details() or str(exc.code())
        finally:
            await self._inbox.put(_END)

    async def next(self, timeout: float) -> StreamedEvent | None:
        """The next event, or None when none arrives within ``timeout`` seconds."""
        try:
            item = await asyncio.wait_for(self._inbox.get(), timeout)
        except TimeoutError:
            return None
        if item is _END:
            await self._inbox.put(_END)  # later calls see the end too
            raise StreamClosed(503, self._closed_why or "stream closed")
        assert isinstance(item, StreamedEvent)
        return item

    async def answer(self, event: StreamedEvent, answer: Answer) -> None:
        """Tell the sidecar what became of ``event``; ``success`` acknowledges it."""
        processed = api_v1.SubscribeTopicEventsRequestProcessedAlpha1(
            id=event.id, status=appcallback_v1.TopicEventResponse(status=_STATUS[answer])
        )
        try:
            await self._call.write(
                api_v1.SubscribeTopicEventsRequestAlpha1(event_processed=processed)
            )
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            raise StreamClosed(503, f"could not answer event {event.id}: {exc}") from None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.sleep(SETTLE_S)
        if self._call is not None:
            # Half-close: the sidecar ends the subscription and hands back what is unanswered.
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await self._call.done_writing()
        if self._reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), CLOSE_WAIT_S)
            except TimeoutError:
                self._call.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()


def _event(msg: appcallback_v1.TopicEventRequest) -> StreamedEvent:
    return StreamedEvent(
        id=msg.id,
        topic=msg.topic,
        type=msg.type,
        data=bytes(msg.data),
        content_type=msg.data_content_type,
    )


def _http_status(code: grpc.StatusCode) -> int:
    return {
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.NOT_FOUND: 404,
    }.get(code, 503)
