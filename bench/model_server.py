"""Time to first token and tokens/s of the local model: through the mesh vs. straight to
llama-server, measured in the same run, alternating, on the same prompt.

- direct: a streamed chat completion on llama-server's OpenAI-compatible API (the request
  the agent's model turn makes: its instructions, the prompt, its max_tokens, temperature);
- mesh: a streamed stateless run of the agent ``local`` through the gateway (API key, run
  record, RabbitMQ, agent-runner and the Agents SDK, run events to Redis, SSE back).

Time to first token: from sending the request to the first non-empty text delta. Tokens/s:
the output tokens the server reported, over the time from the request to the last delta.
Needs `agentia model build`; brings the mesh up with the local profile (down again after,
unless it was already up). On a shared machine run it under the mesh lock:

    flock /tmp/agentia-mesh.lock .venv/bin/python bench/model_server.py [--rounds 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import yaml

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools import model_build
from agentia_tools.runtime import local_keys, model_server, orchestrate
from agentia_tools.runtime.supervisor import Supervisor

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS

PROMPT = "Describe a walk along the sea shore in a few sentences."
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"


def data_lines(resp: httpx.Response) -> Iterator[str]:
    for line in resp.iter_lines():
        if line.startswith("data: "):
            yield line[6:]


def direct(agent: dict[str, Any], key: str) -> dict[str, float]:
    """One streamed completion straight from llama-server."""
    settings = agent.get("model_settings", {})
    body = {
        "model": model_build.MODEL_NAME,
        "messages": [
            {"role": "system", "content": agent["instructions"]},
            {"role": "user", "content": PROMPT},
        ],
        "max_tokens": settings.get("max_tokens"),
        "temperature": settings.get("temperature"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.monotonic()
    first = last = 0.0
    tokens = 0
    url = f"{model_server.base_url()}/chat/completions"
    headers = {"authorization": f"Bearer {key}"}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=120) as resp:
        resp.raise_for_status()
        for data in data_lines(resp):
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
            for choice in chunk.get("choices", []):
                if (choice.get("delta") or {}).get("content"):
                    last = time.monotonic()
                    first = first or last
    return _figures(started, first, last, tokens)


def mesh(client: httpx.Client) -> dict[str, float]:
    """One streamed stateless run of the agent ``local`` through the gateway."""
    body = {"assistant_id": "local", "input": PROMPT, "stream_mode": ["messages-tuple", "events"]}
    started = time.monotonic()
    first = last = 0.0
    tokens = 0
    event = ""
    with client.stream("POST", "/runs/stream", json=body, timeout=120) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
                continue
            if not line.startswith("data: "):
                continue
            data = json.loads(line[6:])
            if event == "messages" and data[0].get("content"):
                last = time.monotonic()
                first = first or last
            elif event == "events" and data["kind"] in ("run.completed", "run.failed"):
                if data["kind"] == "run.failed":
                    raise RuntimeError(f"the run failed: {data['data']}")
                tokens = int(data["data"]["usage"]["output_tokens"])
                break
    return _figures(started, first, last, tokens)


def _figures(started: float, first: float, last: float, tokens: int) -> dict[str, float]:
    if not first:
        raise RuntimeError("no text came back")
    return {
        "ttft_ms": (first - started) * 1000,
        "tokens": tokens,
        "tokens_per_s": tokens / (last - started) if last > started else 0.0,
        "decode_tokens_per_s": (tokens - 1) / (last - first) if last > first else 0.0,
        "total_ms": (last - started) * 1000,
    }


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="runs of each, alternating")
    args = parser.parse_args()
    home = agentia_home()
    was_up = Supervisor(home).running()
    print("• bringing the mesh up with the local model profile", flush=True)
    probes = orchestrate.up(home, lambda m: print(f"  {m}", flush=True), "local")
    if not all(p.ok for p in probes):
        sys.exit(f"the mesh is not healthy: {[p.name for p in probes if not p.ok]}")
    agent = yaml.safe_load((repo_root() / "agents" / "local.yaml").read_text())
    model_key = model_server.ensure_api_key(home)
    key_name = f"bench-{uuid.uuid4().hex[:6]}"
    key, _ = local_keys.create_key(home, key_name, "write", rate_limit_per_minute=1_000_000)
    local_keys.reload_gateway_secrets(home)
    results: dict[str, list[dict[str, float]]] = {"direct": [], "mesh": []}
    try:
        with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}) as client:
            deadline = time.monotonic() + 60
            while client.get("/usage").status_code != 200:
                if time.monotonic() > deadline:
                    sys.exit("the gateway did not take the bench key")
                time.sleep(0.5)
            print("• warming up both paths", flush=True)
            direct(agent, model_key)
            mesh(client)
            for n in range(1, args.rounds + 1):
                results["direct"].append(direct(agent, model_key))
                results["mesh"].append(mesh(client))
                print(f"  round {n} of {args.rounds}", flush=True)
    finally:
        local_keys.revoke_key(home, key_name)
        local_keys.reload_gateway_secrets(home)
        if not was_up:
            orchestrate.down(home, lambda m: None)
    medians = {label: summary(rows) for label, rows in results.items()}
    print(
        f"\n{'local model, streamed (median of ' + str(args.rounds) + ')':44} "
        f"{'TTFT ms':>8} {'tokens':>7} {'tok/s':>7} {'decode tok/s':>13} {'total ms':>9}"
    )
    for label, name in (
        ("direct to llama-server (baseline)", "direct"),
        ("through the mesh", "mesh"),
    ):
        m = medians[name]
        print(
            f"{label:44} {m['ttft_ms']:8.0f} {m['tokens']:7.0f} {m['tokens_per_s']:7.1f} "
            f"{m['decode_tokens_per_s']:13.1f} {m['total_ms']:9.0f}"
        )
    d, t = medians["direct"], medians["mesh"]
    print(
        f"the mesh adds {t['ttft_ms'] - d['ttft_ms']:.0f} ms to the first token; "
        f"end-to-end tokens/s ratio {t['tokens_per_s'] / d['tokens_per_s']:.2f}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "model_server.json"
    out.write_text(json.dumps({"rounds": results, "medians": medians, "prompt": PROMPT}, indent=1))
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
