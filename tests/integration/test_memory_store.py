"""The key-value store through the memory service and its sidecar, on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.runtime.secrets_file import read_secrets

from .conftest import Sidecar

pytestmark = pytest.mark.integration


@pytest.fixture
def caller(mesh_sidecar: Callable[[str], Sidecar], mesh_service: Callable[[str], None]) -> Sidecar:
    mesh_service(names.MEMORY)
    return mesh_sidecar(names.GATEWAY)


def store(app: Sidecar, path: str, body: Any) -> httpx.Response:
    return httpx.post(
        f"{app.dapr}/v1.0/invoke/{names.MEMORY}/method/internal/store/{path}",
        json=body,
        headers=app.headers(),
        timeout=30,
    )


def put(app: Sidecar, ns: list[str], key: str, value: dict[str, Any], **kw: Any) -> None:
    resp = store(app, "items/put", {"namespace": ns, "key": key, "value": value, **kw})
    assert resp.status_code == 204, resp.text


def test_put_get_delete_and_replace(caller: Sidecar) -> None:
    ns = ["test", uuid.uuid4().hex[:8], "ann@example.com"]
    put(caller, ns, "k1", {"text": "hello", "n": 1})
    got = store(caller, "items/get", {"namespace": ns, "key": "k1"}).json()
    assert got["namespace"] == ns and got["key"] == "k1" and got["value"]["n"] == 1
    put(caller, ns, "k1", {"text": "hello again", "n": 2})
    again = store(caller, "items/get", {"namespace": ns, "key": "k1"}).json()
    assert again["value"]["n"] == 2 and again["created_at"] == got["created_at"]
    assert again["updated_at"] > got["updated_at"]
    assert store(caller, "items/delete", {"namespace": ns, "key": "k1"}).status_code == 204
    missing = store(caller, "items/get", {"namespace": ns, "key": "k1"})
    assert missing.status_code == 404 and "no item" in missing.json()["detail"]
    assert store(caller, "items/delete", {"namespace": ns, "key": "k1"}).status_code == 404


def test_search_filters_paging_and_semantic_query(caller: Sidecar) -> None:
    root = ["test", uuid.uuid4().hex[:8]]
    docs = {
        "a": {"text": "The cat sleeps on the warm sofa", "n": 1, "tag": "pets"},
        "b": {"text": "Quarterly revenue grew by ten percent", "n": 2, "tag": "work"},
        "c": {"text": "Our dog loves long walks in the park", "n": 3, "tag": "pets"},
        "d": {"text": "The train to Paris leaves at noon", "n": 4, "tag": "travel"},
    }
    for key, value in docs.items():
        put(caller, [*root, "docs"], key, value, index=["text"])
    put(caller, [*root, "other"], "z", {"text": "not indexed", "n": 5}, index=False)

    def search(**body: Any) -> list[dict[str, Any]]:
        resp = store(caller, "items/search", {"namespace_prefix": root, **body})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])

    assert {i["key"] for i in search(limit=100)} == {"a", "b", "c", "d", "z"}
    assert {i["key"] for i in search(filter={"tag": "pets"})} == {"a", "c"}
    assert {i["key"] for i in search(filter={"n": {"$gte": 3}})} == {"c", "d", "z"}
    assert {i["key"] for i in search(filter={"n": {"$gt": 1, "$lt": 4}})} == {"b", "c"}
    assert {i["key"] for i in search(filter={"tag": {"$ne": "pets"}})} == {"b", "d", "z"}
    newest_first = [i["key"] for i in search(limit=100)]
    pages = [i["key"] for off in range(0, 5, 2) for i in search(limit=2, offset=off)]
    assert pages == newest_first
    ranked = search(query="which pet likes going outside for a stroll?", limit=5)
    assert ranked[0]["key"] == "c" and ranked[0]["score"] > ranked[1]["score"]
    assert ranked[-1]["key"] == "z" and ranked[-1]["score"] is None  # not indexed: last
    assert search(query="train departure time", filter={"tag": "travel"})[0]["key"] == "d"
    only_docs = store(caller, "items/search", {"namespace_prefix": [*root, "docs"], "limit": 100})
    assert len(only_docs.json()["items"]) == 4
    # A prefix matches whole labels only.
    assert search_prefix(caller, [root[0], root[1][:-1]]) == []


def search_prefix(caller: Sidecar, prefix: list[str]) -> list[Any]:
    return list(store(caller, "items/search", {"namespace_prefix": prefix}).json()["items"])


def test_list_namespaces(caller: Sidecar) -> None:
    root = ["test", uuid.uuid4().hex[:8]]
    for ns in (["u1", "facts"], ["u1", "prefs"], ["u2", "facts"], ["u2", "facts", "old"]):
        put(caller, [*root, *ns], "k", {"v": 1})

    def ls(**body: Any) -> list[list[str]]:
        resp = store(caller, "namespaces", {"prefix": root, **body})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["namespaces"])

    assert ls() == [
        [*root, "u1", "facts"],
        [*root, "u1", "prefs"],
        [*root, "u2", "facts"],
        [*root, "u2", "facts", "old"],
    ]
    assert ls(max_depth=3) == [[*root, "u1"], [*root, "u2"]]
    assert ls(suffix=["facts"]) == [[*root, "u1", "facts"], [*root, "u2", "facts"]]
    assert ls(limit=1, offset=1) == [[*root, "u1", "prefs"]]


def test_ttl_expiry(caller: Sidecar) -> None:
    ns = ["test", uuid.uuid4().hex[:8]]
    put(caller, ns, "short", {"v": 1}, ttl=0.02)  # 1.2 s
    put(caller, ns, "long", {"v": 2}, ttl=10)
    assert store(caller, "items/get", {"namespace": ns, "key": "short"}).status_code == 200
    time.sleep(1.5)
    assert store(caller, "items/get", {"namespace": ns, "key": "short"}).status_code == 404
    keys = [i["key"] for i in search_prefix(caller, ns)]
    assert keys == ["long"]
    assert store(caller, "namespaces", {"prefix": ns}).json()["namespaces"] == [ns]


def test_bad_input_gets_a_4xx_with_a_reason(caller: Sidecar) -> None:
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("items/put", {"namespace": [], "key": "k", "value": {}}, 422, "namespace"),
        ("items/put", {"namespace": ["a/b"], "key": "k", "value": {}}, 422, "namespace[0]"),
        ("items/put", {"namespace": ["x" * 65], "key": "k", "value": {}}, 422, "namespace[0]"),
        ("items/put", {"namespace": ["a"] * 11, "key": "k", "value": {}}, 422, "namespace"),
        ("items/put", {"namespace": ["a"], "key": "", "value": {}}, 422, "key"),
        ("items/put", {"namespace": ["a"], "key": "k", "value": [1]}, 422, "value"),
        ("items/put", {"namespace": ["a"], "key": "k", "value": {}, "ttl": -1}, 422, "ttl"),
        ("items/put", {"namespace": ["a"], "key": "k", "value": {"t": "x" * 70_000}}, 413, "value"),
        ("items/search", {"filter": {"n": {"$regex": "x"}}}, 422, "unknown operator"),
        ("items/search", {"filter": {"n": {"$gt": [1]}}}, 422, "number or a string"),
        ("items/search", {"limit": 0}, 422, "limit"),
        ("items/search", {"limit": 1001}, 422, "limit"),
        ("namespaces", {"max_depth": 0}, 422, "max_depth"),
    ]
    for path, body, status, reason in cases:
        resp = store(caller, path, body)
        assert resp.status_code == status, (path, body, resp.text)
        assert reason in str(resp.json()["detail"]), (path, body, resp.text)


def test_semantic_search_ranks_through_the_index_where_the_server_has_pgvector(
    caller: Sidecar,
) -> None:
    info = httpx.get(
        f"{caller.dapr}/v1.0/invoke/{names.MEMORY}/method/internal/info",
        headers=caller.headers(),
        timeout=30,
    ).json()
    url = read_secrets(agentia_home())[names.SECRET_POSTGRES_URL]
    with psycopg.connect(url, connect_timeout=10) as c:
        has = c.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    search = info["semantic_search"]
    if has:  # the bundled PostgreSQL 16 that `make up` runs for a new cluster
        assert search == {"ranking": "hnsw", "dim": 384}, search
    else:
        assert search["ranking"] == "exact" and "not installed" in search["reason"], search
    # Either way the ranking is by meaning, through the real service.
    ns = ["users", f"idx-{uuid.uuid4().hex[:8]}"]
    put(caller, ns, "a", {"content": "I drink green tea every morning"})
    put(caller, ns, "b", {"content": "my car is a red hatchback"})
    resp = store(caller, "items/search", {"namespace_prefix": ns, "query": "hot beverages"})
    assert resp.status_code == 200, resp.text
    assert [i["key"] for i in resp.json()["items"]] == ["a", "b"]
