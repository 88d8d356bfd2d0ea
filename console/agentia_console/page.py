"""The console's Streamlit page: chat with an agent on a thread (answers streamed, tool calls
shown), approve or reject waiting workflow steps, delete schedules, replay a run's events.

Run by ``agentia console`` (``streamlit run`` on this file); every call goes through
:class:`~agentia_console.client.GatewayClient`, i.e. the gateway's public API. A refusal
shows the gateway's status and reason in the page, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import streamlit as st

from agentia_console import shaping
from agentia_console.client import GatewayClient, GatewayError

VIEWS = ("Chat", "Workflows", "Schedules", "Trace")
MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~$])")


def md(text: str) -> str:
    """Text shown as itself in Markdown (the model's words are not markup)."""
    return MD_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def flash(level: str, text: str) -> None:
    st.session_state.setdefault("flash", []).append((level, text))


def show_flash() -> None:
    for level, text in st.session_state.pop("flash", []):
        (st.success if level == "ok" else st.error)(text)


def session_client() -> GatewayClient:
    """A client with the key this session uses: the one typed in the sidebar, else the
    key `agentia console` was started with (which never goes to the browser)."""
    typed = str(st.session_state.get("api_key") or "").strip()
    return GatewayClient.from_env(api_key=typed or None)


def guarded(what: str, action: Any, *args: Any) -> None:
    """Run a button's action (a callback, before the page reruns) and say how it went."""
    client = session_client()
    try:
        action(client, *args)
    except GatewayError as exc:
        flash("error", f"{what}: {exc.message}")
    except Exception as exc:  # the page shows a reason, never a traceback
        flash("error", f"{what}: unexpected {type(exc).__name__}: {exc}")
    finally:
        client.close()


# -- sidebar ---------------------------------------------------------------------------------


def sidebar() -> tuple[GatewayClient, str]:
    st.sidebar.title("Agentia console")
    url = os.environ.get("AGENTIA_GATEWAY_URL", "http://127.0.0.1:8000")
    st.sidebar.caption(f"gateway: {url}")
    st.sidebar.text_input(
        "API key",
        key="api_key",
        type="password",
        placeholder="the key the console started with",
        help="Sent as x-api-key. Empty: the key `agentia console` was given (the local key "
        "or AGENTIA_API_KEY), which stays on the server.",
    )
    view = st.sidebar.radio("View", VIEWS, key="view")
    return session_client(), str(view)


def pick_agent(client: GatewayClient) -> str:
    agents = client.agents()
    if not agents:
        raise GatewayError(None, "the gateway lists no agents (is agent-runner up?)")
    ids = [str(a["agent_id"]) for a in agents]
    default = ids.index("assistant") if "assistant" in ids else 0
    agent = st.sidebar.selectbox("Agent", ids, index=default, key="agent")
    described = {str(a["agent_id"]): str(a.get("description") or "") for a in agents}
    st.sidebar.caption(described.get(str(agent), ""))
    return str(agent)


# -- chat ------------------------------------------------------------------------------------


def new_thread(client: GatewayClient, agent: str) -> None:
    created = client.create_thread({"created_by": "console", "agent_id": agent})
    st.session_state["thread_id"] = created["thread_id"]


def pick_thread(client: GatewayClient, agent: str) -> str | None:
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    right.button(
        "New thread",
        on_click=guarded,
        args=("new thread", new_thread, agent),
        use_container_width=True,
    )
    ids = [str(t["thread_id"]) for t in client.threads()]
    current = st.session_state.get("thread_id")
    if current and current not in ids:
        ids.insert(0, current)
    if not ids:
        st.info("No threads yet: press **New thread** to start one.")
        return None
    chosen = left.selectbox("Thread", ids, index=ids.index(current) if current else 0)
    st.session_state["thread_id"] = chosen
    return str(chosen)


def tool_expander(view: shaping.ToolView) -> None:
    with st.expander(md(view.label)):
        st.caption("arguments")
        st.code(view.arguments or "{}", language="json")
        st.caption("result")
        st.code("(waiting)" if view.output is None else view.output)


def show_history(client: GatewayClient, thread_id: str) -> None:
    messages = client.thread(thread_id).get("messages") or []
    for bubble in shaping.bubbles(messages):
        with st.chat_message(bubble.role if bubble.role in ("user", "assistant") else "ai"):
            for view in bubble.tools:
                tool_expander(view)
            if bubble.text:
                st.markdown(md(bubble.text))


def stream_answer(client: GatewayClient, thread_id: str, agent: str, text: str) -> None:
    with st.chat_message("user"):
        st.markdown(md(text))
    with st.chat_message("assistant"):
        tools_box = st.container()
        answer = st.empty()
        calls: list[tuple[Any, shaping.ToolView]] = []
        pending: list[int] = []
        said, deltas, status, run_id = "", 0, "", ""
        started = time.monotonic()
        for part in client.stream_run(thread_id, agent, text):
            if part.kind == "run":
                run_id = part.text
            elif part.kind == "delta":
                said, deltas = said + part.text, deltas + 1
                answer.markdown(md(said) + " ▌")
            elif part.kind == "tool_call":
                args = part.data.get("arguments")
                view = shaping.ToolView(
                    part.text, shaping.as_text(args), None, part.data.get("call_id")
                )
                slot = tools_box.empty()
                calls.append((slot, view))
                pending.append(len(calls) - 1)
                with slot.container():
                    tool_expander(view)
            elif part.kind == "tool_result" and pending:
                slot, view = calls[pending.pop(0)]
                view.output = part.text
                with slot.container():
                    tool_expander(view)
            elif part.kind == "error":
                st.error(f"the run failed: {part.text}")
            elif part.kind == "done":
                status = part.text
        answer.markdown(md(said) if said else "*(no text)*")
    seconds = time.monotonic() - started
    st.session_state["last_stream"] = {
        "thread_id": thread_id,
        "run_id": run_id,
        "deltas": deltas,
        "seconds": round(seconds, 2),
        "status": status or "stream ended without a final event",
    }


def chat_view(client: GatewayClient) -> None:
    agent = pick_agent(client)
    thread_id = pick_thread(client, agent)
    if thread_id is None:
        return
    st.caption(f"thread `{thread_id}` · agent `{agent}`")
    show_history(client, thread_id)
    last = st.session_state.get("last_stream")
    if last and last["thread_id"] == thread_id:
        st.caption(
            f"last answer streamed in {last['deltas']} deltas over {last['seconds']} s · "
            f"run `{last['run_id']}` · {last['status']}"
        )
    prompt = st.chat_input(f"Message {agent}")
    if prompt:
        st.session_state.pop("last_stream", None)
        stream_answer(client, thread_id, agent, prompt)
        last = st.session_state["last_stream"]
        st.caption(
            f"streamed in {last['deltas']} deltas over {last['seconds']} s · "
            f"run `{last['run_id']}` · {last['status']}"
        )


# -- workflows -------------------------------------------------------------------------------


def decide(client: GatewayClient, instance_id: str, approved: bool) -> None:
    client.decide(instance_id, approved)
    flash("ok", f"{'approved' if approved else 'rejected'}: {instance_id}")


def start_loop(client: GatewayClient) -> None:
    form = st.session_state
    tools = [t.strip() for t in str(form.get("wf_tools", "")).split(",") if t.strip()]
    value = {
        "agent_id": form.get("wf_agent") or "assistant",
        "messages": [str(form.get("wf_message") or "")],
        "approval_required": tools,
    }
    started = client.start_workflow("AgentLoop", value)
    flash("ok", f"started AgentLoop {started.get('instance_id')}")


def workflows_view(client: GatewayClient) -> None:
    st.header("Workflows")
    with st.expander("Start an AgentLoop"):
        st.text_input("Agent", value="assistant", key="wf_agent")
        st.text_input("Message", value='calculator {"expression": "6*7"}', key="wf_message")
        st.text_input("Tools that need approval (comma-separated)", "calculator", key="wf_tools")
        st.button("Start", on_click=guarded, args=("start workflow", start_loop))
    st.button("Refresh", key="wf_refresh")
    instances = client.workflows()
    if not instances:
        st.info("No workflow instances.")
    waiting = [w for w in instances if shaping.waiting_for_approval(w)]
    st.caption(f"instances: {len(instances)} · waiting for approval: {len(waiting)}")
    for inst in instances:
        instance_id = str(inst.get("instance_id"))
        with st.container(border=True, key=f"card-{instance_id}"):
            st.markdown(f"**{md(instance_id)}**")
            st.caption(shaping.workflow_summary(inst))
            step = shaping.waiting_for_approval(inst)
            if step is not None:
                st.warning(md(f"waiting for approval: {step.tool}({step.arguments})"))
                yes, no, _ = st.columns([1, 1, 4])
                yes.button(
                    "Approve",
                    key=f"approve-{instance_id}",
                    type="primary",
                    on_click=guarded,
                    args=("approve", decide, instance_id, True),
                )
                no.button(
                    "Reject",
                    key=f"reject-{instance_id}",
                    on_click=guarded,
                    args=("reject", decide, instance_id, False),
                )
            result = shaping.workflow_result(inst)
            if result:
                st.markdown(f"answer: {md(result)}")


# -- schedules -------------------------------------------------------------------------------


def delete_cron(client: GatewayClient, cron_id: str) -> None:
    client.delete_cron(cron_id)
    flash("ok", f"deleted schedule {cron_id}")


def schedules_view(client: GatewayClient) -> None:
    st.header("Schedules")
    st.button("Refresh", key="cron_refresh")
    crons = client.crons()
    if not crons:
        st.info("No schedules. `agentia schedules create` or `POST /runs/crons` makes one.")
    for cron in crons:
        cron_id = str(cron.get("cron_id"))
        with st.container(border=True, key=f"cron-{cron_id}"):
            left, right = st.columns([5, 1], vertical_alignment="center")
            left.markdown(f"**{md(cron_id)}**")
            left.caption(shaping.cron_summary(cron))
            right.button(
                "Delete",
                key=f"delete-{cron_id}",
                on_click=guarded,
                args=("delete schedule", delete_cron, cron_id),
            )


# -- trace -----------------------------------------------------------------------------------


def trace_view(client: GatewayClient) -> None:
    st.header("Trace")
    st.caption("A run's events, replayed from its stream log (it expires after a while).")
    thread_id = st.session_state.get("thread_id")
    run_id: str | None = None
    if thread_id:
        runs = client.thread_runs(thread_id)
        labels = {
            str(r["run_id"]): f"{r['run_id']} · {r['status']} · {r.get('created_at', '')[:19]}"
            for r in runs
        }
        if labels:
            run_id = st.selectbox(
                f"Run on thread {thread_id}", list(labels), format_func=labels.__getitem__
            )
    other = st.text_input("Or a run id (stateless runs too)", key="trace_run").strip()
    if other:
        run_id, thread_id = other, None
    if not run_id:
        st.info("Pick a run: chat on a thread first, or give a run id.")
        return
    on_thread = thread_id if thread_id and not other else None
    frames = client.run_events(run_id, on_thread)
    rows = shaping.trace(frames)
    if not shaping.has_raw_events(frames):
        st.warning("No run events kept for this run (its log expired, or it was not streamed).")
    st.table([{"seq": r.seq, "event": r.kind, "data": r.detail} for r in rows])
    with st.expander("raw frames"):
        st.code("\n".join(json.dumps(f.__dict__, default=str) for f in frames), language="json")


def main() -> None:
    st.set_page_config(page_title="Agentia console", layout="wide")
    client, view = sidebar()
    try:
        show_flash()
        {"Chat": chat_view, "Workflows": workflows_view, "Schedules": schedules_view}.get(
            view, trace_view
        )(client)
    except GatewayError as exc:
        st.error(exc.message)
    except Exception as exc:  # the page shows a reason, never a traceback
        st.error(f"unexpected {type(exc).__name__}: {exc}")
    finally:
        client.close()


if __name__ == "__main__":
    main()
