"""The sidecars' log level comes from AGENTIA_DAPRD_LOG_LEVEL; a bad one is refused by name."""

from __future__ import annotations

import pytest

from agentia_tools.runtime.mesh import daprd_log_level


def test_info_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTIA_DAPRD_LOG_LEVEL", raising=False)
    assert daprd_log_level() == "info"
    monkeypatch.setenv("AGENTIA_DAPRD_LOG_LEVEL", " Debug ")
    assert daprd_log_level() == "debug"


def test_a_level_daprd_does_not_know_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIA_DAPRD_LOG_LEVEL", "verbose")
    with pytest.raises(ValueError, match="AGENTIA_DAPRD_LOG_LEVEL must be one of debug"):
        daprd_log_level()
