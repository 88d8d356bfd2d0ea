"""Installing what is missing from Debian's packages: which packages, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentia_tools.runtime import debian
from agentia_tools.runtime.infra_config import InfraError


def test_only_packages_whose_probe_is_absent_are_missing_each_once(tmp_path: Path) -> None:
    here = tmp_path / "here"
    here.touch()
    probes = {
        str(here): "a",
        str(tmp_path / "gone"): "b",
        "no-such-command-here": "c",
        str(tmp_path / "gone-too"): "b",
        "sh": "d",
    }
    assert debian.missing(probes) == ["b", "c"]


def test_as_root_the_missing_are_installed_and_must_then_be_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = tmp_path / "tool"
    installed: list[list[str]] = []

    def install(packages: list[str], _progress: object) -> None:
        installed.append(packages)
        tool.touch()

    monkeypatch.setattr(debian, "can_install", lambda: True)
    monkeypatch.setattr(debian, "apt_install", install)
    said: list[str] = []
    debian.ensure({str(tool): "tool-pkg"}, said.append, "tests need it")
    debian.ensure({str(tool): "tool-pkg"}, said.append, "tests need it")  # there: nothing
    assert installed == [["tool-pkg"]]
    assert said[0].startswith("installing tool-pkg") and "tests need it" in said[0]

    monkeypatch.setattr(debian, "apt_install", lambda _p, _g: None)
    with pytest.raises(InfraError, match=r"succeeded but .*other is still missing"):
        debian.ensure({str(tmp_path / "other"): "other-pkg"}, said.append, "tests need it")


def test_without_root_the_error_says_why_and_names_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(debian, "can_install", lambda: False)
    with pytest.raises(InfraError) as err:
        debian.ensure({"no-such-command-here": "jq"}, print, "the examples read JSON with jq")
    assert str(err.value) == (
        "the examples read JSON with jq: jq missing; install as root with:\n"
        "  sudo apt-get install -y -q --no-install-recommends jq"
    )
