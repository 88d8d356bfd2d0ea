"""The gateway's pure stream core: events in order with gaps held a while, the SSE frames per
stream mode, and a thread's lane handed over when its run ends (no Dapr, an injected clock)."""

from __future__ import annotations

import json
from typing import Any

from agentia.events import Kind, Status
from agentia_gateway.run_store import empty_lane, handed_over
from agentia_gateway.streaming import InOrder, StreamState
from agentia_tools.chaos.api_load import seq_gaps


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _ev(seq: int, kind: Kind = Kind.MESSAGE_DELTA, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "status": Status.RUNNING, "data": data}


def _seqs(events: Any) -> list[int]:
    return [int(e["seq"]) for e in events]


def test_events_go_on_in_order_each_once() -> None:
    order = InOrder(grace_s=15)
    assert _seqs(order.take([_ev(0), _ev(1), _ev(2)])) == [0, 1, 2]
    assert _seqs(order.take([_ev(1), _ev(2), _ev(3)])) == [3]  # a re-read repeats nothing
    assert order.sent == 3


def test_a_gap_is_held_within_its_grace_then_passed_over() -> None:
    clock = Clock()
    order = InOrder(grace_s=15, clock=clock)
    assert _seqs(order.take([_ev(0), _ev(2), _ev(3)])) == [0]  # 1 is still on its way
    clock.now += 10
    assert _seqs(order.take([_ev(2), _ev(3)])) == []
    assert _seqs(order.take([_ev(1), _ev(2), _ev(3)])) == [1, 2, 3]  # it came: all in order
    assert order.gap_since == 0.0
    assert _seqs(order.take([_ev(5)])) == []
    clock.now += 15.1
    assert _seqs(order.take([_ev(5), _ev(6)])) == [5, 6]  # 4 never came: gone on without it


def test_leaving_early_counts_only_what_was_handed_on() -> None:
    order = InOrder(grace_s=15)
    for event in order.take([_ev(0), _ev(1, Kind.RUN_COMPLETED), _ev(2)]):
        if event["kind"] == Kind.RUN_COMPLETED:
            break
    assert order.sent == 1


def _frames(state: StreamState, event: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for frame in state.frames(event):
        lines = dict(line.split(": ", 1) for line in frame.strip().split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_values_mode_sends_the_whole_conversation_at_each_message() -> None:
    user = {"role": "user", "content": "hi"}
    state = StreamState("r1", ["values"], [user])
    assert _frames(state, _ev(0, Kind.RUN_STARTED, agent_id="helper")) == []
    assert _frames(state, _ev(1, Kind.MESSAGE_DELTA, delta="he")) == []
    [(event, data)] = _frames(state, _ev(2, Kind.MESSAGE_COMPLETED, text="hello"))
    assert event == "values"
    assert data["messages"] == [user, {"role": "assistant", "content": "hello", "id": "r1-2"}]


def test_messages_mode_streams_deltas_with_the_current_agent() -> None:
    state = StreamState("r1", ["messages-tuple"], [])
    _frames(state, _ev(0, Kind.RUN_STARTED, agent_id="triage"))
    _frames(state, _ev(1, Kind.HANDOFF, to="billing"))
    [(event, data)] = _frames(state, _ev(2, Kind.MESSAGE_DELTA, delta="Hel"))
    assert event == "messages"
    assert data == [
        {"type": "AIMessageChunk", "content": "Hel", "id": "r1"},
        {"run_id": "r1", "agent": "billing"},
    ]


def test_tool_calls_and_results_are_messages_and_a_failure_is_an_error_frame() -> None:
    state = StreamState("r1", ["updates", "events"], [])
    call = _frames(state, _ev(0, Kind.TOOL_CALL, name="add", arguments='{"a":1}', call_id="c"))
    assert [e for e, _ in call] == ["events", "updates"]
    assert call[1][1]["agent"]["messages"][0]["tool_calls"] == [
        {"name": "add", "args": '{"a":1}', "id": "c"}
    ]
    result = _frames(state, _ev(1, Kind.TOOL_RESULT, output={"sum": 1}))
    assert result[1][1]["agent"]["messages"][0] == {
        "role": "tool",
        "content": '{"sum": 1}',
        "id": "r1-1",
    }
    failed = _frames(state, _ev(2, Kind.RUN_FAILED, error="model down"))
    assert failed[-1] == ("error", {"error": "RunError", "message": "model down"})


def test_a_lane_hands_over_to_the_first_queued_run() -> None:
    lane = {"active": "r1", "queue": ["r2", "r3"], "last_status": None}
    after, nxt = handed_over(lane, "r1", Status.SUCCESS)
    assert nxt == "r2"
    assert after == {"active": "r2", "queue": ["r3"], "last_status": Status.SUCCESS}
    after, nxt = handed_over({"active": "r3", "queue": []}, "r3", Status.ERROR)
    assert (after, nxt) == ({"active": None, "queue": [], "last_status": Status.ERROR}, None)


def test_a_queued_run_that_ends_only_leaves_the_queue_and_a_repeat_changes_nothing() -> None:
    lane = {"active": "r1", "queue": ["r2", "r3"], "last_status": None}
    after, nxt = handed_over(lane, "r3", Status.INTERRUPTED)
    assert (after, nxt) == ({"active": "r1", "queue": ["r2"], "last_status": None}, None)
    assert handed_over(lane, "r9", Status.SUCCESS) == (None, None)
    assert handed_over(None, "r1", Status.SUCCESS) == (None, None)
    assert empty_lane()["active"] is None


def test_a_streams_seqs_must_run_from_zero_each_once() -> None:
    assert seq_gaps([0, 1, 2, 3]) == 0
    assert seq_gaps([]) == 0
    assert seq_gaps([3, 4, 5]) == 3  # 0-2 lost on the way (as a broker move once did)
    assert seq_gaps([0, 1, 1, 2]) == 1  # a repeat
    assert seq_gaps([0, 2]) == 1
