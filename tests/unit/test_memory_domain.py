"""The memory service's store and long-term memory logic, without Dapr or a database."""

from __future__ import annotations

import numpy as np
import pytest

from agentia_memory.embeddings import HashEmbedder, MiniLMEmbedder, from_bytes, to_bytes
from agentia_memory.extraction import Candidate, HeuristicExtractor, parse_model_output
from agentia_memory.kv_rules import (
    InvalidInput,
    TooLarge,
    check_key,
    check_namespace,
    check_value,
    index_text,
    matches,
    ns_path,
    parse_filter,
)
from agentia_memory.memories import memory_namespace


def test_namespace_rules() -> None:
    check_namespace(["users", "ann@example.com", "prefs:v1", "a_b-c.d"])
    with pytest.raises(InvalidInput, match="at least one label"):
        check_namespace([])
    with pytest.raises(InvalidInput, match=r"namespace\[1\]"):
        check_namespace(["ok", "has/slash"])
    with pytest.raises(InvalidInput, match="at most 10"):
        check_namespace(["a"] * 11)
    with pytest.raises(InvalidInput, match=r"namespace\[0\]"):
        check_namespace(["x" * 65])
    check_namespace([], "prefix", allow_empty=True)
    assert ns_path(["a", "b.c"]) == "a/b.c"


def test_key_and_value_limits() -> None:
    check_key("k" * 256)
    for bad in ("", "k" * 257, "tab\there"):
        with pytest.raises(InvalidInput, match="key"):
            check_key(bad)
    check_value({"t": "x" * 60_000})
    with pytest.raises(TooLarge, match="65536"):
        check_value({"t": "x" * 70_000})


def test_filters_mean_what_they_say() -> None:
    doc = {"n": 3, "tag": "pets", "ok": True, "meta": {"topic": "travel"}}

    def f(spec: dict[str, object]) -> bool:
        return bool(matches(doc, parse_filter(spec)))

    assert f({"tag": "pets"}) and not f({"tag": "work"})
    assert f({"n": 3.0}) and not f({"ok": 1}) and f({"ok": True})
    assert f({"n": {"$gt": 2, "$lte": 3}}) and not f({"n": {"$lt": 3}})
    assert f({"tag": {"$ne": "work"}}) and f({"missing": {"$ne": 1}})
    assert not f({"tag": {"$gt": 1}})  # order comparisons need the same type
    assert f({"tag": {"$gte": "a"}})
    assert f({"meta.topic": "travel"}) and not f({"meta.topic.x": "travel"})
    assert not f({"missing": 1})
    with pytest.raises(InvalidInput, match="unknown operator"):
        parse_filter({"n": {"$in": [1]}})
    with pytest.raises(InvalidInput, match="number or a string"):
        parse_filter({"n": {"$gt": True}})
    with pytest.raises(InvalidInput, match="field"):
        parse_filter({"a..b": 1})


def test_index_text_picks_the_fields_to_embed() -> None:
    value = {"title": "Trip", "body": {"text": "Paris in May"}, "tags": ["fr", "travel"], "n": 2}
    assert index_text(value, None) == 'Trip\n{"text": "Paris in May"}\nfr\ntravel\n2'
    assert index_text(value, ["body.text", "tags"]) == "Paris in May\nfr\ntravel"
    assert index_text(value, ["nope"]) is None


def test_vectors_round_trip_and_hash_embedder_is_deterministic() -> None:
    emb = HashEmbedder(64)
    a, b = emb.embed(["the red car", "the red car"]), emb.embed(["a blue boat"])
    assert np.allclose(a[0], a[1]) and np.isclose(np.linalg.norm(a[0]), 1.0)
    assert float(a[0] @ b[0]) < 0.99
    back = from_bytes([to_bytes(a[0]), b"short"], 64)
    assert np.allclose(back[0], a[0]) and not back[1].any()


def test_offline_minilm_ranks_the_relevant_text_first() -> None:
    emb = MiniLMEmbedder()
    docs = [
        "The user is allergic to peanuts.",
        "The user drives an old red Volvo.",
        "The user is planning a trip to Japan in April.",
    ]
    vectors = emb.embed(docs)
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    query = emb.embed(["which foods must I avoid?"])[0]
    assert int(np.argmax(vectors @ query)) == 0
    query = emb.embed(["holiday abroad"])[0]
    assert int(np.argmax(vectors @ query)) == 2


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_heuristic_extractor_finds_facts_rules_and_an_episode() -> None:
    items = [
        _user("Hi, my name is Ann. My favourite colour is green!"),
        {"role": "assistant", "content": [{"type": "output_text", "text": "Noted, Ann."}]},
        _user("I live in Lyon. I love long walks in the hills. Always answer in French."),
        _user("Actually my favorite colour is blue."),
    ]
    found = HeuristicExtractor().extract(items, [])
    by_slot = {c.slot: c.content for c in found if c.slot}
    assert by_slot == {
        "name": "The user's name is Ann.",
        "favourite colour": "The user's favourite colour is blue.",  # the later value wins
        "location": "The user lives in Lyon.",
    }
    kinds = {c.kind: c for c in found}
    assert Candidate("semantic", "The user loves long walks in the hills.") in found
    assert kinds["procedural"].content == "Always answer in French."
    assert "Actually my favorite colour is blue." in kinds["episodic"].content
    assert HeuristicExtractor().extract([], []) == []


def test_model_output_is_checked() -> None:
    text = (
        '{"memories": [{"kind": "semantic", "content": "Likes tea", "slot": "Favorite Drink"},'
        ' {"kind": "bogus", "content": "x"}, {"kind": "episodic", "content": " "}]}'
    )
    assert parse_model_output(text) == [Candidate("semantic", "Likes tea", "favourite drink")]
    assert parse_model_output("not json") == []


def test_memories_go_to_the_user_or_else_the_thread() -> None:
    assert memory_namespace({"user_id": "ann@example.com"}, "t1") == ["memories", "ann@example.com"]
    assert memory_namespace({"user": "bob smith"}, "t1") == ["memories", "bob_smith"]
    assert memory_namespace({}, "t1") == ["memories", "thread", "t1"]
