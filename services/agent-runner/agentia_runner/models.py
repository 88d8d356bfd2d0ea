"""Which model answers: the offline model, the OpenAI API, or any OpenAI-compatible endpoint.

An agent definition names its model as ``offline``, ``openai:<model>`` (needs an API key)
or ``compatible:<model>`` (vLLM, Ollama, llama.cpp server, LiteLLM… at a base URL).
"""

from __future__ import annotations

from agents import Model, ModelProvider, OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import AsyncOpenAI

from agentia_runner.offline_model import OFFLINE_MODEL_NAME, OfflineModel


class ModelConfigError(ValueError):
    """A model was asked for that this runner is not configured to reach."""


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
            return OpenAIChatCompletionsModel(model=model, openai_client=self._compatible)
        raise ModelConfigError(
            f"model '{name}': use 'offline', 'openai:<model>' or 'compatible:<model>'"
        )

    def check(self, model_name: str) -> None:
        """Raise :class:`ModelConfigError` now rather than at the first run."""
        self.get_model(model_name)
