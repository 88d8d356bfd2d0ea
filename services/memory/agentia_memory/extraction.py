"""Distilling a conversation into memory candidates. No Dapr, no database here.

Two extractors with one interface, ``extract(items) -> list[Candidate]``:

- :class:`HeuristicExtractor` (offline, deterministic): rules over the user's sentences.
  Facts with a *slot* ("name", "favourite colour", "location"...) replace the previous
  value of that slot; other likes, instructions ("always …", "never …", "from now on …")
  merge with similar memories; one episode summarises the latest exchange.
- :class:`ModelExtractor`: asks a chat model (any OpenAI-compatible endpoint) for the same
  JSON shape, with the existing memories in the prompt so it can restate rather than repeat.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from agentia.contracts.memory_store import MAX_CONTENT
from agentia.contracts.memory_store import MEMORY_KINDS as KINDS
from agentia.contracts.memory_store import MemoryKind as Kind


@dataclass(frozen=True)
class Candidate:
    """A memory the conversation supports. ``slot`` names a single-valued fact."""

    kind: Kind
    content: str
    slot: str | None = None


class Extractor(Protocol):
    name: str

    def extract(
        self, items: list[dict[str, Any]], existing: list[dict[str, Any]]
    ) -> list[Candidate]: ...


def text_of(item: dict[str, Any]) -> str:
    """The text of a Responses-API message item (string content or text parts)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("text")
        )
    return ""


def _messages(items: list[dict[str, Any]], role: str) -> list[str]:
    return [t for i in items if i.get("role") == role and (t := text_of(i).strip())]


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLEAN_END = re.compile(r"[\s.!?,;:]+$")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _tidy(text: str) -> str:
    return _CLEAN_END.sub("", text.strip())


def _slot(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower().replace("favorite", "favourite"))


# (pattern, kind, slot or None (slot from the match's "slot" group), template)
_RULES: list[tuple[re.Pattern[str], str | None, str]] = [
    (re.compile(r"\bmy name is (?P<v>[\w' -]{1,60})", re.I), "name", "The user's name is {v}."),
    (re.compile(r"\bcall me (?P<v>[\w' -]{1,60})", re.I), "name", "The user's name is {v}."),
    (
        re.compile(r"\bmy (?P<slot>[a-z][a-z ]{1,40}?) (?:is|are) (?P<v>[^.!?]{1,200})", re.I),
        None,
        "The user's {slot} is {v}.",
    ),
    (
        re.compile(r"\bI (?:live|am based|reside) in (?P<v>[^.!?,]{1,100})", re.I),
        "location",
        "The user lives in {v}.",
    ),
    (
        re.compile(r"\bI work (?:at|for) (?P<v>[^.!?,]{1,100})", re.I),
        "employer",
        "The user works at {v}.",
    ),
]
_LIKES = re.compile(
    r"\bI (?P<verb>really like|like|love|enjoy|prefer|dislike|hate|don't like|do not like) "
    r"(?P<v>[^.!?]{1,200})",
    re.I,
)
_INSTRUCTION = re.compile(
    r"^(?:please\s+)?(?:always|never|from now on|in future|in the future|remember to)\b", re.I
)


class HeuristicExtractor:
    """Deterministic rules: works offline, same input, same memories."""

    name = "heuristic"

    def extract(
        self, items: list[dict[str, Any]], existing: list[dict[str, Any]]
    ) -> list[Candidate]:
        out: dict[tuple[str, str], Candidate] = {}
        for message in _messages(items, "user"):
            for sentence in _sentences(message):
                for cand in self._from_sentence(sentence):
                    # Later statements win: a slot said twice keeps its last value.
                    out[(cand.kind, cand.slot or cand.content.lower())] = cand
        episode = self._episode(items)
        if episode:
            out[("episodic", episode.content)] = episode
        return list(out.values())

    @staticmethod
    def _from_sentence(sentence: str) -> list[Candidate]:
        found: list[Candidate] = []
        if _INSTRUCTION.search(sentence):
            found.append(Candidate("procedural", _tidy(sentence)[:MAX_CONTENT] + "."))
            return found
        for pattern, slot, template in _RULES:
            m = pattern.search(sentence)
            if not m:
                continue
            name = slot or _slot(m.group("slot"))
            value = _tidy(m.group("v"))
            found.append(
                Candidate("semantic", template.format(v=value, slot=name)[:MAX_CONTENT], name)
            )
            break
        m = _LIKES.search(sentence)
        if m and not found:
            verb = m.group("verb").lower().replace("don't like", "does not like")
            verb = verb.replace("do not like", "does not like")
            verbs = {"like": "likes", "love": "loves", "enjoy": "enjoys", "prefer": "prefers"}
            verbs |= {"dislike": "dislikes", "hate": "hates", "really like": "really likes"}
            phrase = verbs.get(verb, verb)
            found.append(Candidate("semantic", f"The user {phrase} {_tidy(m.group('v'))}."))
        return found

    @staticmethod
    def _episode(items: list[dict[str, Any]]) -> Candidate | None:
        asked = _messages(items, "user")
        answered = _messages(items, "assistant")
        if not asked:
            return None
        text = f"The user asked: {asked[-1][:300]!r}"
        if answered:
            text += f"; the assistant answered: {answered[-1][:300]!r}"
        return Candidate("episodic", text + ".")


_PROMPT = """You maintain an AI assistant's long-term memory about a user.
Read the conversation and the memories already kept. Return a JSON object
{"memories": [{"kind": "semantic"|"episodic"|"procedural", "content": str, "slot": str|null}]}
with the memories worth keeping: semantic = facts about the user, procedural = instructions
on how the assistant should behave, episodic = one line on what happened in this exchange.
Give single-valued facts a short slot name (e.g. "name", "favourite colour") so a new value
replaces the old one. Restate an existing memory (same wording) instead of adding a near
duplicate. Return only new or changed memories."""


class ModelExtractor:
    """Extraction by a chat model on an OpenAI-compatible endpoint (JSON output)."""

    def __init__(self, client: Any, model: str) -> None:
        self.name = f"model:{model}"
        self._client = client  # an openai.OpenAI client
        self._model = model

    def extract(
        self, items: list[dict[str, Any]], existing: list[dict[str, Any]]
    ) -> list[Candidate]:
        conversation = [
            {"role": i.get("role"), "content": text_of(i)} for i in items if i.get("role")
        ]
        reply = self._client.chat.completions.create(
            model=self._model,
            response_format={"type": "json_object"},
            messages=[
                {"role": "system", "content": _PROMPT},
                {
                    "role": "user",
                    "content": json.dumps(
                        {"conversation": conversation, "existing_memories": existing}
                    ),
                },
            ],
        )
        return parse_model_output(reply.choices[0].message.content or "{}")


def parse_model_output(text: str) -> list[Candidate]:
    """The model's JSON, checked: unknown kinds and empty contents are dropped."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    out = []
    for m in data.get("memories", []) if isinstance(data, dict) else []:
        if not isinstance(m, dict) or m.get("kind") not in KINDS:
            continue
        content = str(m.get("content") or "").strip()[:MAX_CONTENT]
        slot = m.get("slot")
        if content:
            out.append(
                Candidate(m["kind"], content, _slot(slot) if isinstance(slot, str) else None)
            )
    return out
