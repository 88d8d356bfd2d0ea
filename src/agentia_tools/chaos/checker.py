"""The offline checker: a verdict computed from a history (:mod:`.history`), not from the
load generator's own counters, so a fault in the bookkeeping cannot hide a fault in the mesh.

What it counts, Jepsen's way:

- **lost**: a run the system accepted and never showed final (every read said pending or
  running, or none could find it);
- **duplicated**: a run completed twice (two distinct final events: it ran twice), or an
  effect applied twice (two distinct ids under one (run, step) key);
- **unexpected**: a completion, an effect or a read of a run nobody was told exists (not
  accepted, and not the run of a request whose outcome the client never learned);
- **stale**: a read that went back: a run read non-final after a read had shown it final,
  or read with a different final status than an earlier read;
- **gapped**: a subscriber saw a run's events with a seq missing, repeated or out of order;
- **stuck**: a workflow started and never read terminal;
- **indeterminate**: a request whose outcome the client never learned (not a fault: such a
  run may or may not exist; it is lost only if it was accepted after all and never ended).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agentia.events import FINAL
from agentia_tools.chaos.history import Op

WORKFLOW_TERMINAL = frozenset({"COMPLETED", "FAILED", "TERMINATED"})
EXAMPLES = 10  # ids named per count in a verdict (the history has them all)


@dataclass
class Verdict:
    """What a history shows; ``ok`` when nothing was lost, doubled, unexpected or stale."""

    requested: int = 0
    accepted: int = 0
    refused: int = 0
    indeterminate: int = 0
    final: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    gapped: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        bad = (self.lost, self.duplicated, self.unexpected, self.stale, self.gapped, self.stuck)
        return not any(bad)

    def summary(self) -> dict[str, Any]:
        """Counts, and a few of the ids behind each non-zero one."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "requested": self.requested,
            "accepted": self.accepted,
            "refused": self.refused,
            "indeterminate": self.indeterminate,
            "final": self.final,
        }
        for name in ("lost", "duplicated", "unexpected", "stale", "gapped", "stuck"):
            ids: list[str] = getattr(self, name)
            out[name] = len(ids)
            if ids:
                out[f"{name}_examples"] = sorted(ids)[:EXAMPLES]
        return out


def _gapped(seqs: list[int]) -> bool:
    return seqs != list(range(len(seqs)))


def check(ops: Iterable[Op]) -> Verdict:
    """The verdict over one history (its ops in the order they were recorded)."""
    requested: set[str] = set()
    accepted: dict[str, str] = {}  # run -> the key it was asked under
    refused_keys: dict[str, bool] = {}  # key -> definite
    final_read: dict[str, str] = {}  # run -> the first final status read
    stale: set[str] = set()
    completions: dict[str, set[str]] = defaultdict(set)
    effects: dict[str, set[str]] = defaultdict(set)
    effect_runs: dict[str, str] = {}
    mentioned: set[str] = set()
    gapped: set[str] = set()
    workflows: dict[str, str | None] = {}
    for op in sorted(ops, key=lambda o: o.at):
        run = op.run
        if op.op == "requested" and op.key:
            requested.add(op.key)
        elif op.op == "accepted" and run:
            accepted[run] = op.key or run
        elif op.op == "refused" and op.key:
            refused_keys[op.key] = bool(op.definite)
        elif op.op == "observed" and run and op.status:
            mentioned.add(run)
            earlier = final_read.get(run)
            if earlier is not None and op.status != earlier:
                stale.add(run)  # read back to non-final, or to another final status
            elif op.status in FINAL:
                final_read[run] = op.status
        elif op.op == "completed" and run:
            mentioned.add(run)
            completions[run].add(op.event_id or "")
        elif op.op == "effect" and run and op.effect_key:
            mentioned.add(run)
            effects[op.effect_key].add(op.event_id or "")
            effect_runs[op.effect_key] = run
        elif op.op == "seqs" and run and op.seqs is not None:
            mentioned.add(run)
            if _gapped(op.seqs):
                gapped.add(run)
        elif op.op == "workflow_started" and op.instance:
            workflows.setdefault(op.instance, None)
        elif op.op == "workflow_observed" and op.instance:
            workflows[op.instance] = op.status
    # A request refused after retries on an unknown outcome may have made a run: a run of a
    # key the client asked for is expected even if the client never learned its id.
    unknown = {k for k, definite in refused_keys.items() if not definite} - set(accepted.values())
    verdict = Verdict(
        requested=len(requested),
        accepted=len(accepted),
        refused=sum(1 for k, d in refused_keys.items() if d and k not in accepted.values()),
        indeterminate=len(unknown | (requested - set(accepted.values()) - set(refused_keys))),
        final=len(final_read),
    )
    verdict.lost = [r for r in accepted if r not in final_read]
    verdict.duplicated = [r for r, ids in completions.items() if len(ids) > 1]
    verdict.duplicated += [effect_runs[k] + f" ({k})" for k, ids in effects.items() if len(ids) > 1]
    expected = set(accepted) | unknown | set(workflows)  # a workflow's steps are its effects
    verdict.unexpected = [r for r in mentioned if r not in expected]
    verdict.stale = sorted(stale)
    verdict.gapped = sorted(gapped)
    verdict.stuck = [w for w, s in workflows.items() if s not in WORKFLOW_TERMINAL]
    return verdict
