"""The OOM fault is the kernel's own: a process that keeps allocating, put in a memory group
a little above what it holds, is ended by the OOM killer (SIGKILL), counted by the group."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from agentia_tools.chaos.oom import OomError, starve

pytestmark = pytest.mark.integration

GREEDY = """
import sys, time
held = []
print("ready", flush=True)
for _ in range(2000):  # bounded: at most 2 GiB over 100 s
    held.append(bytearray(1024 * 1024))
    time.sleep(0.05)
"""
IDLE = "import sys; print('ready', flush=True); sys.stdin.read()"


def spawn(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_process_that_allocates_is_oom_killed_by_the_kernel() -> None:
    proc = spawn(GREEDY)
    try:
        took = starve("test-greedy", proc.pid, margin_mib=4, timeout_s=60)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert took < 60
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_does_not_allocate_is_reported_not_killed() -> None:
    proc = spawn(IDLE)
    try:
        with pytest.raises(OomError, match="did not run out of 64 MiB of headroom in 2s"):
            starve("test-idle", proc.pid, margin_mib=64, timeout_s=2)
        assert proc.poll() is None  # the limit was lifted: it lives on
    finally:
        proc.kill()
        proc.wait()
