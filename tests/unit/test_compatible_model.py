"""The ``compatible:`` provider asks an OpenAI-compatible server for a stream's usage (the SDK
asks only OpenAI's own API), so streamed runs on llama-server, vLLM… are counted. A fake
transport stands in for the server: what is checked is the request the model sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from agents import ModelSettings, ModelTracing
from openai import AsyncOpenAI

from agentia_runner.models import AgentiaModelProvider, CompatibleChatModel

CHUNKS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}},
]


def stream_request(settings: ModelSettings) -> tuple[dict[str, Any], list[Any]]:
    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        common = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        body = "".join(f"data: {json.dumps({**common, **c})}\n\n" for c in CHUNKS)
        return httpx.Response(
            200, text=body + "data: [DONE]\n\n", headers={"content-type": "text/event-stream"}
        )

    client = AsyncOpenAI(
        base_url="http://server/v1",
        api_key="k",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    model = CompatibleChatModel(model="m", openai_client=client)

    async def run() -> list[Any]:
        stream = model.stream_response(None, "hello", settings, [], None, [], ModelTracing.DISABLED)
        return [event async for event in stream]

    events = asyncio.run(run())
    return sent[0], events


def test_a_stream_asks_for_usage_and_reports_it() -> None:
    body, events = stream_request(ModelSettings())
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    usage = events[-1].response.usage
    assert (usage.input_tokens, usage.output_tokens) == (7, 2)


def test_an_agents_own_include_usage_wins() -> None:
    body, _ = stream_request(ModelSettings(include_usage=False))
    assert body["stream_options"] == {"include_usage": False}


def test_the_provider_gives_compatible_models_this_model() -> None:
    provider = AgentiaModelProvider(compatible_base_url="http://server/v1")
    assert isinstance(provider.get_model("compatible:smollm2-135m"), CompatibleChatModel)
