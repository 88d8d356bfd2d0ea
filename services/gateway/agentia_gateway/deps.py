"""FastAPI dependencies of the public API: the run flow, the calling key, and budget admission.

Routes declare what they need (``flow: Flow``, ``owner: Owner``, ``caller: Caller``,
``catalog: Catalogue``, ``auth: Auth``, the typed clients ``Memory``, ``Scheduler`` and
``Workflows``, ``over: Admission``) instead
of reading ``request.app.state``; budget admission runs only on the routes that start work,
named by the dependency rather than matched by path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from agentia.contracts.memory import MemoryClient
from agentia.contracts.scheduler import SchedulerClient
from agentia.contracts.workflows import WorkflowsClient
from agentia.service import dapr_client
from agentia_gateway import metrics
from agentia_gateway.budgets import QUEUE_PATH, prefers_queue
from agentia_gateway.catalog import Catalog
from agentia_gateway.errors import NotAuthenticated, OverLimit
from agentia_gateway.run_flow import RunFlow
from agentia_gateway.security import Authenticator, Denied, Principal
from agentia_gateway.upstream import Upstream


def get_flow(request: Request) -> RunFlow:
    flow: RunFlow = request.app.state.runs
    return flow


def get_owner(request: Request) -> Principal | None:
    """The key (tenant) making the request, set by the gateway's door (authentication)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def get_caller(owner: Annotated[Principal | None, Depends(get_owner)]) -> Principal:
    """The key making the request, on a route that is only for keys (401 without one)."""
    if owner is None:
        raise NotAuthenticated("this endpoint answers for an API key: send X-Api-Key")
    return owner


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def get_auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def get_memory(request: Request) -> MemoryClient:
    """memory's API; its refusals reach the client as they are (``upstream``)."""
    return get_flow(request).memory


def get_scheduler(request: Request) -> SchedulerClient:
    """The scheduler's API; its refusals reach the client as they are (``upstream``)."""
    return SchedulerClient(Upstream(dapr_client(request.app)))


def get_workflows(request: Request) -> WorkflowsClient:
    """agent-runner's workflow API; its refusals reach the client as they are (``upstream``)."""
    return WorkflowsClient(Upstream(dapr_client(request.app)))


Flow = Annotated[RunFlow, Depends(get_flow)]
Owner = Annotated[Principal | None, Depends(get_owner)]
Caller = Annotated[Principal, Depends(get_caller)]
Catalogue = Annotated[Catalog, Depends(get_catalog)]
Auth = Annotated[Authenticator, Depends(get_auth)]
Memory = Annotated[MemoryClient, Depends(get_memory)]
Scheduler = Annotated[SchedulerClient, Depends(get_scheduler)]
Workflows = Annotated[WorkflowsClient, Depends(get_workflows)]


async def admit(
    request: Request,
    flow: Flow,
    owner: Owner,
    prefer: Annotated[str | None, Header(include_in_schema=False, max_length=200)] = None,
) -> str | None:
    """Refuse new work (429 with ``Retry-After``) when the key's budget for today is spent.
    A stateless background run whose client prefers ``over-budget=queue`` is let through
    instead: the reason it is over is returned, and the route queues the run."""
    if owner is None:
        return None
    try:
        await flow.budgets.admit(owner)
    except Denied as denied:
        if request.method == "POST" and request.url.path == QUEUE_PATH and prefers_queue(prefer):
            return denied.reason
        metrics.REFUSED.labels(str(denied.status)).inc()
        raise OverLimit(denied.reason, dict(denied.headers)) from None
    return None


Admission = Annotated[str | None, Depends(admit)]
