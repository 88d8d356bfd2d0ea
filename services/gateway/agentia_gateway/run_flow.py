"""How a run goes through the mesh, seen from the gateway.

Create: check the agent (in the gateway's copy of the agent catalog) and the thread, then in
one transaction record the run, enter it in the in-flight index and take the thread's lane
(or queue behind its active run, per ``multitask_strategy``); then start it: a background or
streamed run is published on ``runs.requested`` (the run id is the idempotency key); a
create-and-wait run is a service invocation of agent-runner, or a publish when agent-runner
cannot be reached. A publish that fails is not a refusal: the run is recorded, and the
reconciler publishes it again (``reconcile.py``). Run events come back on ``runs.events``;
the final one settles the run and hands the lane to the next queued run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any

import httpx
from fastapi import FastAPI

from agentia import faults, names
from agentia.contracts import memory as memory_api
from agentia.contracts.runner import RunnerClient
from agentia.dapr import DaprError
from agentia.events import RunRequested, Status
from agentia.service import dapr_client
from agentia.telemetry import tag_current_span
from agentia_gateway import metrics
from agentia_gateway.budgets import Budgets
from agentia_gateway.catalog import Catalog
from agentia_gateway.errors import GatewayError, Invalid, NotFound, OverLimit, ThreadBusy
from agentia_gateway.log_signals import LogSignals
from agentia_gateway.messages import BadInput, input_messages, run_input, to_messages
from agentia_gateway.run_record import RunKwargs, RunRecord
from agentia_gateway.run_store import Busy, RecordChange, RunStore, now
from agentia_gateway.schemas import RunCreate
from agentia_gateway.security import Denied, Principal
from agentia_gateway.settings import GatewaySettings
from agentia_gateway.upstream import Upstream

log = logging.getLogger(__name__)
DEFAULT_AGENT = "assistant"
INLINE_PUBLISH_S = 1.0  # how long a client's create waits for the broker's confirm
PUBLISH_TIMEOUT_S = 10.0  # a publish slower than this is left to the reconciler
SETTLED_KEPT = 4096  # runs a replica remembers having settled


class Settled:
    """Runs this replica has settled, with the record settling left. A create-and-wait run
    is settled twice here, by agent-runner's answer and by its final event, and a final
    event may be delivered again: the repeat needs no reads. Bounded, and only a help: on
    another replica, or after a restart, a repeat settles by reading, as it always could."""

    def __init__(self, size: int = SETTLED_KEPT) -> None:
        self.size = size
        self._runs: OrderedDict[str, RunRecord | None] = OrderedDict()

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def get(self, run_id: str) -> RunRecord | None:
        record = self._runs[run_id]
        return None if record is None else record.model_copy(deep=True)

    def put(self, run_id: str, record: RunRecord | None) -> None:
        self._runs[run_id] = None if record is None else record.model_copy(deep=True)
        self._runs.move_to_end(run_id)
        while len(self._runs) > self.size:
            self._runs.popitem(last=False)


class RunFlow:
    """The run operations of one gateway replica (all state is in Dapr's stores)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.settings: GatewaySettings = app.state.settings
        self.client = dapr_client(app)
        self.memory = memory_api.MemoryClient(Upstream(self.client))
        self.runner = RunnerClient(Upstream(self.client))
        self.store = RunStore(self.client, self.settings.run_log_ttl_s)
        self.budgets = Budgets(self.client, self.settings.model_prices)
        self.catalog = Catalog(self.client)
        self.faults: faults.Faults = app.state.faults
        self._publishing: set[asyncio.Task[bool]] = set()  # publishes that outlive a request
        self.signals = LogSignals()  # wakes this replica's streams (run_events.py appends)
        self.settled = Settled()
        self._settling: dict[str, asyncio.Task[RunRecord | None]] = {}

    async def agents(self) -> dict[str, str]:
        """The agents the mesh can run, with the model each one's definition names."""
        return dict(await self.catalog.models())

    async def thread(self, thread_id: str) -> dict[str, Any] | None:
        try:
            found = await self.memory.thread(thread_id)
        except GatewayError as exc:
            if exc.status_code == 404:
                return None
            raise
        return found.model_dump()

    # -- creating and starting ----------------------------------------------------------

    async def check(
        self, body: RunCreate, thread_id: str | None
    ) -> tuple[str, Any, dict[str, Any] | None]:
        """What creating ``body`` checks before anything is written: the agent (404), the
        input (422) and the thread (404, unless it may be created). Returns the agent, the
        run's input and the thread (None: none, or one to create)."""
        agent = body.agent or DEFAULT_AGENT
        if agent not in await self.agents():
            raise NotFound(f"no agent '{agent}' (GET /agents/search lists them)")
        try:
            msgs = [m.model_dump(exclude_none=True) for m in body.messages or []]
            value = run_input(body.input, msgs or None)
        except BadInput as exc:
            raise Invalid(str(exc)) from None
        thread = await self.thread(thread_id) if thread_id is not None else None
        if thread_id is not None and thread is None and body.if_not_exists == "reject":
            raise NotFound(f"no thread '{thread_id}' (or pass if_not_exists=create)")
        return agent, value, thread

    async def create(
        self,
        body: RunCreate,
        thread_id: str | None,
        owner: Principal | None = None,
        over_budget: str | None = None,
        may_queue: bool = False,
        run_id: str | None = None,
    ) -> RunRecord:
        """Validate and record a run, and admit it to its thread's lane (not started yet).
        ``owner`` is the key (tenant) whose budget the run's model usage counts against; a run
        whose agent's model is at the key's limit for that model is refused (429), or, when
        ``may_queue``, recorded with ``queued`` (the reason; as for ``over_budget``, why the
        door let it through) for :meth:`enqueue`. ``run_id``: the caller's (a schedule's
        tick), else a new one."""
        agent, value, thread = await self.check(body, thread_id)
        if owner is not None:
            try:
                await self.budgets.admit_model(owner, (await self.agents())[agent])
            except Denied as denied:
                if not may_queue:
                    metrics.REFUSED.labels("429").inc()
                    raise OverLimit(denied.reason, denied.headers) from None
                over_budget = over_budget or denied.reason
        if thread_id is not None and thread is None:
            create = memory_api.ThreadCreate(thread_id=thread_id)
            thread = (await self.memory.create_thread(create)).model_dump()
        stamp = now()
        record = RunRecord(
            run_id=run_id or str(uuid.uuid4()),
            thread_id=thread_id,
            agent_id=agent,
            status=Status.PENDING,
            created_at=stamp,
            updated_at=stamp,
            metadata=body.metadata,
            asked=RunKwargs(
                input=value, stream_mode=body.modes, config=body.config, context=body.context
            ),
            multitask_strategy=body.multitask_strategy,
            on_disconnect=body.on_disconnect,
            item_count_before=int(thread["item_count"]) if thread else 0,
            owner=owner.id if owner is not None else None,
            queued=over_budget,
        )
        strategy = body.multitask_strategy
        try:
            decision, active = await self.store.create(record, strategy)
        except Busy as busy:
            raise ThreadBusy(
                f"thread '{thread_id}' is busy with run {busy.active}; pass multitask_strategy "
                "enqueue, interrupt or rollback to run after it",
            ) from None
        tag_current_span(run_id=record.run_id, thread_id=thread_id)
        self.faults.hit(faults.GATEWAY_AFTER_RECORD, record.run_id, thread_id)
        record.admitted = decision == "start"
        if active is not None and strategy in ("interrupt", "rollback"):
            await self.cancel(active, rollback=strategy == "rollback")
        return record

    def _request(self, record: RunRecord) -> RunRequested:
        return RunRequested(
            run_id=record.run_id,
            thread_id=record.thread_id,
            agent_id=record.agent_id,
            input=record.asked.input,
            metadata=record.metadata,
            owner=record.owner,
        )

    async def publish(self, record: RunRecord) -> None:
        await self.client.publish(names.TOPIC_RUNS_REQUESTED, self._request(record))

    async def start(self, record: RunRecord) -> None:
        """Publish an admitted run's request, waiting for the broker's confirm at most
        ``INLINE_PUBLISH_S``: a broker that is slower, or away, is not a refusal (the run is
        recorded and in the in-flight index). The publish goes on in the background, and
        should it fail, the reconciler publishes the request again after ``GRACE_S``."""
        task = asyncio.create_task(self._publish_quietly(record))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)
        try:
            await asyncio.wait_for(asyncio.shield(task), INLINE_PUBLISH_S)
        except TimeoutError:
            return
        if task.result():
            self.faults.hit(faults.GATEWAY_AFTER_PUBLISH, record.run_id, record.thread_id)

    async def _publish_quietly(self, record: RunRecord) -> bool:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self.publish(record)
            return True
        except (DaprError, httpx.HTTPError, TimeoutError) as exc:
            log.warning(
                "run request not published now; the reconciler will",
                extra={"run_id": record.run_id, "why": str(exc) or type(exc).__name__},
            )
            return False

    async def enqueue(self, record: RunRecord) -> None:
        """Queue a run over its key's budget on the broker (``runs.batch``): a drain starts it
        once the key's budget allows (it asks the gateway first, as crons do)."""
        metrics.QUEUED.inc()
        await self.client.publish(names.TOPIC_RUNS_BATCH, self._request(record))

    async def run_and_wait(self, record: RunRecord) -> RunRecord:
        """Create-and-wait: invoke agent-runner when the run holds its lane (else wait for
        its turn). With agent-runner unreachable, or killed mid-run, the run goes through the
        broker instead and this waits for its final event."""
        if not record.admitted:
            return await self.wait_final(record.run_id)
        try:
            answer = await self.runner.wait(
                self._request(record), timeout=self.settings.run_wait_timeout_s
            )
        except GatewayError as exc:
            if exc.status_code != 503:
                raise
            await self.start(record)
            return await self.wait_final(record.run_id)
        except httpx.HTTPError:
            await self.start(record)
            return await self.wait_final(record.run_id)
        if answer.final:
            settled = await self.settle(record.run_id, answer.status, answer.as_json())
            if settled is not None and settled.final:
                return settled  # no read back: settling returned the record it wrote
        else:  # its attempt stopped (a dependency away): the broker's retries finish it
            await self.start(record)
        return await self.wait_final(record.run_id)

    async def wait_final(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """The run's record once it is final (or as it is when ``timeout`` runs out)."""
        deadline = time.monotonic() + (timeout or self.settings.run_wait_timeout_s)
        pause = 0.02
        while True:
            record = await self.store.get(run_id)
            if record is None:
                raise NotFound(f"no run '{run_id}'")
            if record.final or time.monotonic() > deadline:
                return record
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 0.5)

    # -- settling ----------------------------------------------------------------------------

    async def settle(self, run_id: str, status: Status, result: dict[str, Any]) -> RunRecord | None:
        """The run ended: record it, undo it if it was rolled back, start the next one.
        Returns the run's record (None: a rolled-back run, deleted, or one never recorded)."""
        if run_id in self.settled:
            return self.settled.get(run_id)
        # The run's final event and agent-runner's answer often arrive together: one settles,
        # the other waits for it.
        task = self._settling.get(run_id)
        if task is None:
            task = asyncio.create_task(self._settle(run_id, status, result))
            self._settling[run_id] = task
            task.add_done_callback(lambda done: self._settled(run_id, done))
        record = await asyncio.shield(task)
        return None if record is None else record.model_copy(deep=True)

    def _settled(self, run_id: str, task: asyncio.Task[RunRecord | None]) -> None:
        del self._settling[run_id]
        if not task.cancelled() and task.exception() is None:
            self.settled.put(run_id, task.result())  # only once every step has been done

    async def _settle(
        self, run_id: str, status: Status, result: dict[str, Any]
    ) -> RunRecord | None:
        flipped: list[bool] = []

        def finish(cur: RunRecord | None) -> RunRecord | None:
            if cur is None or cur.final:
                return None
            flipped.append(True)
            return cur.model_copy(
                update={
                    "status": status,
                    "output": result.get("output"),
                    "error": result.get("error"),
                    "usage": result.get("usage"),
                    "updated_at": now(),
                }
            )

        record = await self.store.update(run_id, finish)
        # Counted once per run (a marker); the event names the owner of runs started elsewhere.
        owner = record.owner if record is not None else result.get("owner")
        if owner and result.get("usage"):
            await self.budgets.count(
                str(owner), run_id, result["usage"], result.get("models"), first=bool(flipped)
            )
        if record is None or record.thread_id is None:
            return record
        thread_id = record.thread_id
        if flipped and record.rollback:
            keep = memory_api.Truncate(count=record.item_count_before)
            await self.memory.truncate(thread_id, keep)
            await self.store.index_remove(thread_id, run_id)
            await self.store.delete(run_id)
            record = None
        nxt = await self.store.release(thread_id, run_id, status)
        while nxt is not None:
            queued = await self.store.get(nxt)
            if queued is not None and not queued.final:
                thread = await self.thread(thread_id)
                count = int(thread["item_count"]) if thread else 0
                await self.store.update(nxt, _with_count_before(count))
                # A crash or a broker away here is repaired by the reconciler: the run is
                # the lane's active run and in the in-flight index.
                await self.start(queued)
                return record
            nxt = await self.store.release(thread_id, nxt, Status.INTERRUPTED)
        return record

    async def cancel(self, run_id: str, rollback: bool = False) -> RunRecord:
        record = await self.store.get(run_id)
        if record is None:
            raise NotFound(f"no run '{run_id}'")
        if record.final:
            return record
        if rollback:
            await self.store.update(
                run_id, lambda cur: cur.model_copy(update={"rollback": True}) if cur else None
            )
        thread_id = record.thread_id
        if thread_id is not None:
            lane = await self.store.lane(thread_id)
            if run_id in lane.get("queue", []):  # never started: settle it here
                await self.store.release(thread_id, run_id, Status.INTERRUPTED)
                await self.settle(
                    run_id, Status.INTERRUPTED, {"error": "cancelled before it started"}
                )
                return await self.store.get(run_id) or record
        await self.runner.cancel(run_id)
        if record.queued and record.status == Status.PENDING:
            # Queued over budget, not started: it ends now; the drain that starts it later
            # finds it cancelled (agent-runner checks a drained run before it runs).
            await self.settle(run_id, Status.INTERRUPTED, {"error": "cancelled before it started"})
            return await self.store.get(run_id) or record
        return record

    # -- what a run produced ---------------------------------------------------------------------

    async def thread_items(self, thread_id: str) -> list[dict[str, Any]]:
        return (await self.memory.items(thread_id)).items

    async def thread_messages(
        self, thread_id: str, upto: int | None = None
    ) -> list[dict[str, Any]]:
        items = await self.thread_items(thread_id)
        return list(to_messages(items[:upto] if upto is not None else items))

    async def values(self, record: RunRecord) -> list[dict[str, Any]]:
        """The messages after the run: the thread's, or (stateless) input plus output."""
        thread_id = record.thread_id
        if thread_id and not record.rollback and await self.thread(thread_id) is not None:
            return list(await self.thread_messages(thread_id))
        msgs: list[dict[str, Any]] = input_messages(record.asked.input)
        if record.output is not None:
            out = record.output
            text = out if isinstance(out, str) else str(out)
            msgs.append({"role": "assistant", "content": text, "id": f"{record.run_id}-out"})
        return msgs


def _with_count_before(count: int) -> RecordChange:
    """An update that records the thread's item count before the run starts."""

    def change(cur: RunRecord | None) -> RunRecord | None:
        return cur.model_copy(update={"item_count_before": count}) if cur else None

    return change
