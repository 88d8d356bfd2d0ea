"""How a service starts in its container: the one command the image and the manifests share.

The image built from ``deploy/docker/Dockerfile`` with ``--build-arg SERVICE=<app id>`` runs
``python -m agentia.kind_serve``, which reads ``AGENTIA_SERVICE`` and execs
:func:`service_command`; the Kubernetes Deployments spell out the same command. Module and
port come from :mod:`agentia.names` and the local mesh's table, never retyped.
"""

from __future__ import annotations

import os
import sys

from agentia import names
from agentia.runtime.mesh import SERVICE_MODULES

SERVICE_ENV = "AGENTIA_SERVICE"
GRACEFUL_SHUTDOWN_S = 10  # below the pod's terminationGracePeriodSeconds


def service_command(app_id: str, python: str = "python") -> list[str]:
    """``python -m uvicorn <module>.app:create_app --factory`` on the service's app port."""
    if app_id not in SERVICE_MODULES:
        raise ValueError(f"unknown service '{app_id}'; one of: {', '.join(names.APP_IDS)}")
    return [
        python,
        "-m",
        "uvicorn",
        f"{SERVICE_MODULES[app_id]}.app:create_app",
        "--factory",
        "--host",
        "0.0.0.0",
        "--port",
        str(names.PORTS[app_id].app),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        str(GRACEFUL_SHUTDOWN_S),
    ]


def main(argv: list[str] | None = None) -> int:
    """Exec the service named by ``$AGENTIA_SERVICE``; ``--check`` only prints its command."""
    args = sys.argv[1:] if argv is None else argv
    app_id = os.environ.get(SERVICE_ENV, "")
    try:
        command = service_command(app_id, sys.executable)
    except ValueError as exc:
        print(f"{SERVICE_ENV}: {exc}", file=sys.stderr)
        return 2
    if "--check" in args:
        print(" ".join(command))
        return 0
    os.execv(sys.executable, command)  # noqa: S606 - replaces this process, as intended


if __name__ == "__main__":
    sys.exit(main())
