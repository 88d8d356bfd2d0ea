"""The gateway's run record: how it is stored and how clients see it."""

from __future__ import annotations

from agentia_gateway.run_record import RunKwargs, RunRecord

STORED = {
    "run_id": "r1",
    "thread_id": "t1",
    "agent_id": "assistant",
    "status": "success",
    "created_at": "2026-12-04T10:00:00+00:00",
    "updated_at": "2026-12-04T10:00:01+00:00",
    "metadata": {"k": "v"},
    "kwargs": {"input": "hi", "stream_mode": ["values"], "config": None, "context": None},
    "multitask_strategy": "enqueue",
    "on_disconnect": "cancel",
    "item_count_before": 3,
    "owner": "key-1",
    "queued": None,
    "rollback": False,
    "output": "hello",
    "error": None,
    "usage": {"total_tokens": 5},
}


def test_a_stored_record_reads_and_writes_back_the_same() -> None:
    record = RunRecord.model_validate(STORED)
    assert record.asked.input == "hi" and record.final
    assert record.as_json() == STORED


def test_what_the_create_call_knows_is_never_stored() -> None:
    record = RunRecord.model_validate(STORED)
    record.admitted = True
    assert "admitted" not in record.as_json()


def test_clients_see_the_agent_protocols_run() -> None:
    public = RunRecord.model_validate(STORED).public()
    assert public["assistant_id"] == public["agent_id"] == "assistant"
    assert public["kwargs"] == STORED["kwargs"] and public["status"] == "success"
    assert "owner" not in public and "output" not in public


def test_a_new_record_has_the_defaults_a_client_expects() -> None:
    record = RunRecord(
        run_id="r2",
        agent_id="a",
        status="pending",
        created_at="t",
        updated_at="t",
        asked=RunKwargs(input="x"),
    )
    assert not record.final and record.multitask_strategy == "reject"
    assert record.as_json()["kwargs"]["input"] == "x"
