"""Claim-check transcripts: the workflow history of a long chat, per turn, bounded vs. naive.

Two ChatAgent instances get the same user turns one at a time (offline model; every fifth
turn calls the calculator tool), on the same agent-runner, in the same run:
- naive: the transcript travels in the workflow (activity inputs and outputs), no
  continue-as-new: the history grows with the square of the conversation's length;
- claim check: the transcript lives in a memory-service thread, the history keeps item
  counts, hashes and previews, and the instance continues as new every 20 messages.
After every few turns the bench sums the bytes the workflow engine keeps for each instance
in the actor state store (PostgreSQL rows under the instance's actor keys), and the
largest single row, which must stay under the sidecar's message-size limits.

    .venv/bin/python bench/history.py [--turns 100] [--every 10] [--naive-turns 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

import httpx
import psycopg

from agentia import names
from agentia.contracts import workflows as wf_api
from agentia.paths import repo_root

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS, start_services

RUNNER = f"http://127.0.0.1:{names.PORTS[names.AGENT_RUNNER].app}"


def _start(client: httpx.Client, claim_check: bool) -> str:
    instance = f"hist-{'cc' if claim_check else 'naive'}-{uuid.uuid4().hex[:6]}"
    inp = {"agent_id": "assistant", "claim_check": claim_check, "generation": 20}
    if not claim_check:
        inp["generation"] = 10_000
    resp = client.post(
        wf_api.WORKFLOWS, json={"workflow": "ChatAgent", "input": inp, "instance_id": instance}
    )
    resp.raise_for_status()
    return instance


def _say(client: httpx.Client, instance: str, text: str, done: int) -> None:
    message = wf_api.event_path(instance, "message")
    client.post(message, json={"text": text}).raise_for_status()
    deadline = time.monotonic() + 120
    while True:
        resp = client.get(wf_api.instance_path(instance))
        custom = (resp.json().get("custom_status") or {}) if resp.status_code == 200 else {}
        if custom.get("messages_done") == done and custom.get("phase") == "waiting":
            return
        if time.monotonic() > deadline:
            why = resp.text[:300] if resp.status_code != 200 else custom
            raise RuntimeError(f"{instance}: turn {done} not answered in 120 s ({why})")
        time.sleep(0.02)


def _history(conn: psycopg.Connection[Any], instance: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT coalesce(sum(octet_length(value::text)), 0), coalesce(max(octet_length("
        "value::text)), 0) FROM dapr_state WHERE key LIKE %s",
        (f"%||{instance}||%",),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument(
        "--naive-turns", type=int, default=200, help="stop the naive one here (it grows as n²)"
    )
    args = parser.parse_args()
    print("• starting infrastructure, the control plane, memory and agent-runner", flush=True)
    _, plan = start_services((names.MEMORY, names.AGENT_RUNNER))
    headers = {"dapr-api-token": plan.tokens.app_api_token}
    rows: list[dict[str, int]] = []
    with (
        httpx.Client(base_url=RUNNER, headers=headers, timeout=60) as client,
        psycopg.connect(plan.credentials.postgres_url, autocommit=True) as conn,
    ):
        naive, claim = _start(client, False), _start(client, True)
        peak = {"naive": 0, "claim_check": 0}
        for turn in range(1, args.turns + 1):
            text = 'calculator {"expression": "6*7"}' if turn % 5 == 0 else f"message {turn}"
            naive_on = turn <= args.naive_turns
            for instance in (naive, claim) if naive_on else (claim,):
                _say(client, instance, text, turn)
            # Measured after every turn: the claim-check history drops at each continue-as-new,
            # so the peak between two of them is the figure that matters.
            (n_total, n_max) = _history(conn, naive) if naive_on else (0, 0)
            (c_total, c_max) = _history(conn, claim)
            peak = {
                "naive": max(peak["naive"], n_total),
                "claim_check": max(peak["claim_check"], c_total),
            }
            if turn % args.every == 0 or turn == 1:
                rows.append(
                    {
                        "turn": turn,
                        "naive": n_total,
                        "naive_max_row": n_max,
                        "claim_check": c_total,
                        "claim_check_max_row": c_max,
                        "claim_check_peak": peak["claim_check"],
                    }
                )
                print(
                    f"  turn {turn}: naive {n_total} B, claim check {c_total} B "
                    f"(peak so far {peak['claim_check']} B)",
                    flush=True,
                )
        for instance in (naive, claim):
            client.post(wf_api.event_path(instance, "message"), json={"end": True})
    head = f"{'peak so far':>12} {'largest row':>12} {'naive/peak':>11}"
    print(f"\n{'turn':>6} {'naive KiB':>10} {'largest row':>12} {'claim-check KiB':>16} {head}")
    for r in rows:
        if not r["naive"]:  # the naive instance stopped at --naive-turns
            print(
                f"{r['turn']:>6} {'-':>10} {'-':>12} {r['claim_check'] / 1024:>16.1f} "
                f"{r['claim_check_peak'] / 1024:>12.1f} {r['claim_check_max_row'] / 1024:>12.1f}"
            )
            continue
        ratio = r["naive"] / r["claim_check_peak"]
        print(
            f"{r['turn']:>6} {r['naive'] / 1024:>10.1f} {r['naive_max_row'] / 1024:>12.1f} "
            f"{r['claim_check'] / 1024:>16.1f} {r['claim_check_peak'] / 1024:>12.1f} "
            f"{r['claim_check_max_row'] / 1024:>12.1f} {ratio:>11.1f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "history.json"
    out.write_text(json.dumps({"turns": args.turns, "rows": rows}, indent=1))
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
