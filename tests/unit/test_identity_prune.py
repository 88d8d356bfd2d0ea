"""Pruning the versioned identity folders the Dapr scheduler leaves behind on restart."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agentia_tools.runtime import mesh


def test_old_identity_versions_are_pruned_and_the_current_one_kept(tmp_path: Path) -> None:
    target = tmp_path / "scheduler-identity"
    versions = [tmp_path / f"{n}-scheduler-identity" for n in (1, 2, 3)]
    for v in versions:
        v.mkdir()
        (v / "cert.pem").write_text("x")
    target.symlink_to(versions[1])
    fresh = tmp_path / "4-scheduler-identity"
    fresh.mkdir()
    old = time.time() - 3600
    for v in versions:
        os.utime(v, (old, old))
    (tmp_path / "other-scheduler-identity").mkdir()
    assert mesh.prune_identity_versions(target) == 2
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        "2-scheduler-identity",
        "4-scheduler-identity",
        "other-scheduler-identity",
        "scheduler-identity",
    ]
    assert (target / "cert.pem").read_text() == "x"
