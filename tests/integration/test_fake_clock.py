"""The fake clock the clock-fault experiments put a service under (runtime/clock.py): a real
process under the bundled libfaketime sees the file's offset on its wall clock, follows a
jump while it runs, and keeps the real monotonic clock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentia_tools.runtime.clock import clock_environment, clock_file

pytestmark = pytest.mark.integration

# Prints its wall and monotonic clocks each time it reads a line.
PROBE = """
import sys, time
for _ in sys.stdin:
    print(time.time(), time.monotonic(), flush=True)
"""


def read(proc: subprocess.Popen[str]) -> tuple[float, float]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    wall, mono = proc.stdout.readline().split()
    return float(wall) - time.time(), float(mono) - time.monotonic()


def test_a_service_under_the_fake_clock_is_skewed_and_follows_a_jump(tmp_path: Path) -> None:
    assert clock_environment(tmp_path, "agent-runner") == {}  # no file: the real clock
    path = clock_file(tmp_path, "agent-runner")
    path.parent.mkdir(parents=True)
    path.write_text("+300\n")
    env = clock_environment(tmp_path, "agent-runner")
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        skew, mono = read(proc)
        assert 295 < skew < 305, skew
        assert abs(mono) < 5, mono  # the monotonic clock is the real one
        path.write_text("-120\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            skew, _ = read(proc)
            if -125 < skew < -115:
                break
            time.sleep(0.2)
        assert -125 < skew < -115, f"the running process did not follow the jump: {skew}"
    finally:
        proc.kill()
        proc.wait()
