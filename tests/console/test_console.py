"""The web console end to end: a real browser (Debian's Chromium, headless, via Playwright)
on `agentia console`, which talks to the real gateway and mesh. What the page shows is
checked against what the gateway's API says."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import ARTIFACTS

pytestmark = pytest.mark.integration
CALC = 'calculator {"expression": "6*7"}'


# Records every text the page shows with the streaming cursor, i.e. an answer still arriving.
WATCH_PARTIAL = """() => {
  window.partialAnswers = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('[data-testid="stMarkdownContainer"]')) {
      const text = el.innerText;
      if (text.endsWith("▌") && !window.partialAnswers.includes(text)) {
        window.partialAnswers.push(text.slice(0, -1));
      }
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def view(page: Page, name: str) -> None:
    page.get_by_test_id("stSidebar").get_by_text(name, exact=True).click()


def send(page: Page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")


def new_thread(page: Page) -> str:
    """Press New thread; returns the id of the thread the page then shows."""
    caption = page.get_by_text(re.compile(r"^thread \S+ · agent assistant$"))
    expect(caption.or_(page.get_by_text("No threads yet"))).to_be_visible()  # first render done
    before = caption.all_inner_texts()
    page.get_by_role("button", name="New thread").click()
    expect(caption).to_be_visible()
    if before:
        expect(caption).not_to_have_text(before[0])
    match = re.match(r"thread (\S+) ·", caption.inner_text())
    assert match, caption.inner_text()
    return match.group(1)


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: not after {timeout}s")


def test_a_message_is_answered_as_a_stream(page: Page, api: httpx.Client) -> None:
    expect(page.get_by_test_id("stSidebar").get_by_text("General assistant")).to_be_visible()
    thread_id = new_thread(page)
    assert api.get(f"/threads/{thread_id}").status_code == 200  # made through POST /threads
    page.evaluate(WATCH_PARTIAL)
    send(page, "hello console")
    answer = "[offline model] You said: hello console"
    expect(page.get_by_text(answer, exact=True)).to_be_visible()
    partial = page.evaluate("window.partialAnswers")  # what the page showed on the way
    assert partial, "the answer was never shown before it was complete"
    print(f"[console] shown while streaming: {partial}")
    assert all(answer.startswith(p.strip()) for p in partial), partial
    streamed = page.get_by_text(re.compile(r"^streamed in \d+ deltas"))
    expect(streamed).to_contain_text("success")
    deltas = int(re.search(r"in (\d+) deltas", streamed.inner_text()).group(1))  # type: ignore[union-attr]
    # The runner batches deltas (the first at once, the rest within 30 ms): fewer than words.
    words = len(re.findall(r"\S+\s*", answer))
    assert 1 < deltas < words, f"{deltas} deltas for {words} words: batched, yet streamed"
    shot(page, "chat-streamed")
    messages = api.get(f"/threads/{thread_id}").json()["messages"]
    assert [m["content"] for m in messages] == ["hello console", answer]


def test_a_tool_call_and_its_result_are_shown(page: Page, api: httpx.Client) -> None:
    thread_id = new_thread(page)
    send(page, CALC)
    expect(page.get_by_text("[offline model] calculator returned: 42", exact=True)).to_be_visible()
    call = page.get_by_test_id("stExpander").filter(has_text=re.compile(r"calculator\(.*6\*7"))
    expect(call).to_have_count(1)
    expect(call).to_contain_text("→ 42")
    call.get_by_text(re.compile(r"^tool call: calculator")).click()
    expect(call.get_by_test_id("stCode").first).to_contain_text('"expression"')
    shot(page, "chat-tool-call")

    view(page, "Trace")  # the run's stream, replayed from its log
    table = page.get_by_test_id("stTable")
    expect(table).to_contain_text("run.completed")
    for kind in ("run.started", "tool.call", "tool.result", "message.delta"):
        expect(table).to_contain_text(kind)
    runs = api.get(f"/threads/{thread_id}/runs").json()
    assert len(runs) == 1 and runs[0]["status"] == "success"
    expect(table).to_contain_text(runs[0]["run_id"])  # the replay's metadata names the run
    shot(page, "trace")

    view(page, "Chat")  # the history, now from the gateway: the call is there too
    expect(page.get_by_test_id("stExpander").filter(has_text="→ 42")).to_have_count(1)


def test_a_waiting_workflow_step_is_approved_from_the_page(page: Page, api: httpx.Client) -> None:
    instance = f"console-{uuid.uuid4().hex[:8]}"
    body = {
        "workflow": "AgentLoop",
        "instance_id": instance,
        "input": {
            "agent_id": "assistant",
            "messages": [CALC],
            "approval_required": ["calculator"],
            "approval_timeout_s": 120,
        },
    }
    assert api.post("/workflows", json=body).status_code == 201

    def phase() -> str | None:
        custom = api.get(f"/workflows/{instance}").json().get("custom_status")
        return custom.get("phase") if isinstance(custom, dict) else None

    wait_until(lambda: phase() == "awaiting_approval", 60, "awaiting approval")
    view(page, "Workflows")
    card = page.locator(f".st-key-card-{instance}")
    expect(card).to_contain_text("waiting for approval: calculator")
    shot(page, "workflow-waiting")
    card.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"approved: {instance}")).to_be_visible()
    done = wait_until(
        lambda: (w := api.get(f"/workflows/{instance}").json())["status"] == "COMPLETED" and w,
        60,
        "workflow completed",
    )
    assert done["output"]["outputs"] == ["[offline model] calculator returned: 42"]
    steps = api.get(f"/workflows/{instance}/steps").json()["steps"]
    tool = [s for s in steps if s["kind"] == "tool"]
    assert len(tool) == 1 and tool[0]["output"] == "42", tool
    page.get_by_role("button", name="Refresh").click()
    expect(card).to_contain_text("answer: [offline model] calculator returned: 42")
    shot(page, "workflow-approved")
    api.delete(f"/workflows/{instance}")


def test_a_schedule_is_listed_and_deleted(page: Page, api: httpx.Client) -> None:
    made = api.post(
        "/runs/crons",
        json={"assistant_id": "assistant", "schedule": "0 9 * * 1-5", "input": "console cron"},
    )
    assert made.status_code == 200, made.text
    cron_id = made.json()["cron_id"]
    try:
        view(page, "Schedules")
        card = page.locator(f".st-key-cron-{cron_id}")
        expect(card).to_contain_text("cron 0 9 * * 1-5 (UTC)")
        shot(page, "schedules")
        card.get_by_role("button", name="Delete").click()
        expect(page.get_by_text(f"deleted schedule {cron_id}")).to_be_visible()
        expect(card).to_have_count(0)
        listed = [c["cron_id"] for c in api.post("/runs/crons/search", json={}).json()]
        assert cron_id not in listed
    finally:
        api.delete(f"/runs/crons/{cron_id}")


def test_a_refusal_shows_the_gateways_reason_not_a_traceback(page: Page) -> None:
    key = page.get_by_test_id("stSidebar").get_by_role("textbox", name="API key")
    key.fill("agk_not-a-real-key")
    key.press("Enter")
    error = page.get_by_test_id("stAlert").filter(has_text="401")
    expect(error).to_contain_text("gateway answered 401 (not authenticated)")
    expect(error).to_contain_text("the API key is not valid")
    assert "Traceback" not in page.inner_text("body")
    shot(page, "refused-401")
