"""`agentia postgres upgrade` on real clusters: a mesh's PostgreSQL 15 cluster (Debian's, no
pgvector) holding memories is moved to the bundled 16 with pg_upgrade; the memory service's
start-up code then moves every stored vector into the HNSW index. No memory may be lost,
and the old cluster is kept.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from agentia_memory.db import MIGRATION_LOCK, make_engine, migrate
from agentia_memory.embeddings import HashEmbedder
from agentia_memory.kv import KVStore
from agentia_memory.vectors import VectorIndex, open_index
from agentia_tools.runtime.infra_servers import (
    ServerSetupError,
    as_user,
    bundled_pg_bindir,
    initdb_command,
    own_dir,
    pg_bindir,
    pg_servers,
    run_as,
    server_root,
)
from agentia_tools.runtime.pg_upgrade import upgrade_cluster

PORT = 5998
EMBEDDER = HashEmbedder(64)


def pg_ctl(bindir: Path, data: Path, sock: Path, *args: str) -> None:
    opts = f"-c listen_addresses='' -c unix_socket_directories={sock} -c port={PORT}"
    cmd = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(sock / "log"), "-o", opts, *args]
    subprocess.run(as_user(run_as("postgres"), cmd), check=True, capture_output=True)


@pytest.fixture
def home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="agentia-upgrade-") as tmp:
        path = Path(tmp)
        path.chmod(0o755)
        yield path
        for data in (server_root(path) / "data").glob("postgres*"):
            if (data / "postmaster.pid").exists():
                bindir = pg_bindir(data)
                subprocess.run(
                    as_user(
                        run_as("postgres"),
                        [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                    ),
                    capture_output=True,
                    check=False,
                )


def test_a_15_cluster_with_memories_moves_to_16_and_into_the_index(home: Path) -> None:
    bundled = bundled_pg_bindir()
    debian = [b for b in pg_servers() if b != bundled]
    assert bundled is not None and debian, "both servers are installed by make venv / make up"
    user = run_as("postgres")
    root = server_root(home)
    data = own_dir(root / "data" / "postgres", user)
    sock = own_dir(root / "run" / "postgres", user)
    subprocess.run(as_user(user, initdb_command(debian[0], data)), check=True, capture_output=True)
    assert (data / "PG_VERSION").read_text().strip() != "16"

    url = f"postgresql://postgres@/postgres?host={sock}&port={PORT}"
    pg_ctl(debian[0], data, sock, "-w", "start")
    engine = make_engine(url)
    migrate(engine)
    kv = KVStore(engine, EMBEDDER)
    for i in range(300):
        kv.put(["users", f"u{i % 7}"], f"m{i}", {"content": f"memory number {i} about tea"})
    kv.put(["users", "u0"], "plain", {"content": "not searchable"}, index=False)
    before = {(i.key, i.score) for i in kv.search(["users", "u3"], query="tea 45", limit=50)}
    engine.dispose()

    with pytest.raises(ServerSetupError, match="running"):
        upgrade_cluster(home, print)
    pg_ctl(debian[0], data, sock, "-w", "-m", "fast", "stop")

    said = upgrade_cluster(home, print)
    assert "done" in said
    assert (data / "PG_VERSION").read_text().strip() == "16"
    assert any(root.glob("data/postgres.*.old/PG_VERSION")), "the old cluster is kept"
    assert "nothing to do" in upgrade_cluster(home, print)

    pg_ctl(bundled, data, sock, "-w", "start")
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE EXTENSION vector")  # what `agentia up` does as the superuser
    engine = make_engine(url)
    vectors = open_index(engine, EMBEDDER.dim, MIGRATION_LOCK)
    assert isinstance(vectors, VectorIndex), vectors
    kv = KVStore(engine, EMBEDDER, vectors)
    assert kv.count(["users"]) == 301, "every memory came along"
    after = {(i.key, i.score) for i in kv.search(["users", "u3"], query="tea 45", limit=50)}
    engine.dispose()
    assert {k for k, _ in after} == {k for k, _ in before}
    assert all(s is not None for _, s in after)
