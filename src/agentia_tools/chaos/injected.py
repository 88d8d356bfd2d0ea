"""How many faults an experiment injected: each fault action counts what it did (a process
killed, stopped or frozen, a partition window, a clock moved, a poison event, a disk filled,
an OOM kill), and every report the probes write carries the count, which the soak sums.

One experiment is one ``chaos run`` process, so a counter in this module is its count.
"""

from __future__ import annotations

_count = 0


def fault(count: int = 1) -> None:
    """Count ``count`` faults as injected."""
    global _count
    _count += count


def total() -> int:
    return _count
