"""supervisord configuration rendered from process specs."""

from __future__ import annotations

import configparser
from pathlib import Path

from agentia_tools.runtime.programs import ProgramSpec
from agentia_tools.runtime.supervisor import Supervisor


def test_render_one_program_per_spec_with_own_log(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    specs = [
        ProgramSpec(
            "gateway",
            ["python", "-m", "uvicorn", "x:y"],
            "app",
            environment={"DAPR_API_TOKEN": 't%o"k'},
        ),
        ProgramSpec("postgres", ["postgres", "-D", "/d"], "infra", user="postgres"),
    ]
    sup.write(specs)
    cp = configparser.RawConfigParser()
    cp.read(sup.conf)
    gw = cp["program:gateway"]
    assert gw["autostart"] == "false" and gw["autorestart"] == "true"
    assert gw["stdout_logfile"].endswith("logs/gateway.log")
    assert 'DAPR_API_TOKEN="t%%o\\"k"' in gw["environment"]
    assert cp["program:postgres"]["user"] == "postgres"
    assert sup.groups() == {"gateway": "app", "postgres": "infra"}
    assert oct(sup.conf.stat().st_mode & 0o777) == "0o600"


def test_not_running_without_socket(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    assert not sup.running()
    assert sup.processes() == []
