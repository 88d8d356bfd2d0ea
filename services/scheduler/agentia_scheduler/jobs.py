"""Dapr's Jobs API over the sidecar's HTTP port: schedule, get and delete a job by name."""

from __future__ import annotations

from typing import Any

import httpx

from agentia.dapr import DaprError

JOBS_PATH = "/v1.0-alpha1/jobs"


class JobsClient:
    """Jobs of this app (the sidecar scopes job names to its app id)."""

    def __init__(self, base_url: str, api_token: str, timeout: float = 10.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers={"dapr-api-token": api_token}, timeout=timeout
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def _raise_for(resp: httpx.Response) -> None:
        if resp.status_code >= 400:
            try:
                reason = resp.json().get("message") or resp.text
            except ValueError:
                reason = resp.text
            raise DaprError(resp.status_code, str(reason))

    async def schedule(self, name: str, body: dict[str, Any]) -> None:
        self._raise_for(await self._http.post(f"{JOBS_PATH}/{name}", json=body))

    async def get(self, name: str) -> dict[str, Any] | None:
        resp = await self._http.get(f"{JOBS_PATH}/{name}")
        if resp.status_code == 404 or (resp.status_code == 500 and "not found" in resp.text):
            return None
        self._raise_for(resp)
        return dict(resp.json())

    async def delete(self, name: str) -> None:
        resp = await self._http.delete(f"{JOBS_PATH}/{name}")
        if resp.status_code == 404:
            return
        self._raise_for(resp)
