"""Where the Dapr binaries come from: env folder, ~/.dapr/bin, PATH, cache — in that order."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agentia_tools.runtime import daprbin


def _fake_bins(
    folder: Path, version: str = "1.18.0", names: tuple[str, ...] = daprbin.REQUIRED
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        exe = folder / name
        exe.write_text(f"#!/bin/sh\necho {version}\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return folder


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTIA_DAPR_BIN_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")


def test_env_folder_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_bins(tmp_path / "home" / ".dapr" / "bin")
    env = _fake_bins(tmp_path / "mine", version="1.18.9")
    monkeypatch.setenv("AGENTIA_DAPR_BIN_DIR", str(env))
    found = daprbin.find_dapr_binaries()
    assert found is not None and found.daprd == env / "daprd"
    assert found.source == "env AGENTIA_DAPR_BIN_DIR" and found.version == "1.18.9"


def test_incomplete_env_folder_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _fake_bins(tmp_path / "mine", names=("daprd",))
    monkeypatch.setenv("AGENTIA_DAPR_BIN_DIR", str(env))
    with pytest.raises(daprbin.DaprBinariesError, match="placement, scheduler"):
        daprbin.find_dapr_binaries()


def test_dapr_init_folder_then_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = _fake_bins(tmp_path / "pathbin")
    monkeypatch.setenv("PATH", f"{on_path}:/usr/bin:/bin")
    found = daprbin.find_dapr_binaries()
    assert found is not None and found.source == "PATH"
    _fake_bins(tmp_path / "home" / ".dapr" / "bin")
    found = daprbin.find_dapr_binaries()
    assert found is not None and found.source == "~/.dapr/bin"


def test_cache_used_when_nothing_else(tmp_path: Path) -> None:
    assert daprbin.find_dapr_binaries() is None
    _fake_bins(daprbin.cache_dir())
    found = daprbin.find_dapr_binaries()
    assert found is not None and found.source == "cache"
    assert str(tmp_path / "cache") in str(found.daprd)


def test_cache_folder_changes_with_the_build_inputs() -> None:
    name = daprbin.cache_dir().name
    assert name.startswith(f"v{daprbin.DAPR_VERSION}-") and len(name.split("-")[-1]) == 12


def test_no_go_and_nothing_found_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(daprbin.DaprBinariesError, match="install Go"):
        daprbin.ensure_dapr_binaries(lambda _m: None)


def test_old_version_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIA_DAPR_BIN_DIR", str(_fake_bins(tmp_path / "old", version="1.14.0")))
    said: list[str] = []
    daprbin.ensure_dapr_binaries(said.append)
    assert any("1.14.0" in s and "warning" in s for s in said)
