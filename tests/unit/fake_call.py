"""A fake :class:`agentia.contracts.Call` for the typed clients' unit tests: it records each
call and answers from a list (an exception in the list is raised), or always the same."""

from __future__ import annotations

from typing import Any, NamedTuple


class Called(NamedTuple):
    """One call a client made."""

    app: str
    method: str
    path: str
    body: Any
    timeout: float | None


class FakeCall:
    def __init__(self, *answers: Any, always: Any = None) -> None:
        self.answers, self.always = list(answers), always
        self.calls: list[Called] = []

    async def __call__(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "POST",
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        self.calls.append(Called(app_id, http_method, method, body, timeout))
        answer = self.answers.pop(0) if self.answers else self.always
        if isinstance(answer, Exception):
            raise answer
        return answer

    def asked(self) -> list[tuple[str, str, str, Any]]:
        """(app, method, path, body) of each call."""
        return [(c.app, c.method, c.path, c.body) for c in self.calls]
