"""Which model answers: the offline model, the OpenAI API, or any OpenAI-compatible endpoint.

An agent definition names its model as ``offline``, ``openai:<model>`` (needs an API key)
or ``compatible:<model>`` (vLLM, Ollama, llama.cpp server, LiteLLM… at a base URL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from agents import (
    Handoff,
    Model,
    ModelProvider,
    ModelSettings,
    ModelTracing,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Tool,
)
from agents.agent_output import AgentOutputSchemaBase
from agents.items import TResponseInputItem, TResponseStreamEvent
from openai import AsyncOpenAI
from openai.types.responses.response_prompt_param import ResponsePromptParam

from agentia_runner.offline_model import OFFLINE_MODEL_NAME, OfflineModel


class ModelConfigError(ValueError):
    """A model was asked for that this runner is not configured to reach."""


class CompatibleChatModel(OpenAIChatCompletionsModel):
    """Chat Completions on an OpenAI-compatible server, asking for usage on streams too.

    The SDK asks for a stream's usage (``stream_options.include_usage``) only of OpenAI's own
    API; without it llama-server, vLLM and the like send none, and every streamed run on them
    counted 0 tokens (no budget, no cost). An agent's own ``include_usage`` still wins."""

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        if model_settings.include_usage is None:
            model_settings = replace(model_settings, include_usage=True)
        async for event in super().stream_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        ):
            yield event


class AgentiaModelProvider(ModelProvider):
    """Resolves the ``model`` field of agent definitions."""

    def __init__(
        self,
        openai_api_key: str | None = None,
        compatible_base_url: str | None = None,
        compatible_api_key: str | None = None,
    ) -> None:
        self._openai = AsyncOpenAI(api_key=openai_api_key) if openai_api_key else None
        self._compatible = (
            AsyncOpenAI(base_url=compatible_base_url, api_key=compatible_api_key or "none")
            if compatible_base_url
            else None
        )

    def get_model(self, model_name: str | None) -> Model:
        name = model_name or "offline"
        provider, _, model = name.partition(":")
        if provider == "offline":
            return OfflineModel(f"{OFFLINE_MODEL_NAME}{':' + model if model else ''}")
        if provider == "openai":
            if self._openai is None:
                raise ModelConfigError(f"model '{name}' needs OPENAI_API_KEY (env or secret store)")
            return OpenAIResponsesModel(model=model, openai_client=self._openai)
        if provider == "compatible":
            if self._compatible is None:
                raise ModelConfigError(f"model '{name}' needs AGENTIA_MODEL_BASE_URL")
            return CompatibleChatModel(model=model, openai_client=self._compatible)
        raise ModelConfigError(
            f"model '{name}': use 'offline', 'openai:<model>' or 'compatible:<model>'"
        )

    def check(self, model_name: str) -> None:
        """Raise :class:`ModelConfigError` now rather than at the first run."""
        self.get_model(model_name)
