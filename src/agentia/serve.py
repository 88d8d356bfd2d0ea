"""How a service starts in its container: the one command the image and the manifests share.

The image built from ``deploy/docker/Dockerfile`` with ``--build-arg SERVICE=<app id>`` runs
``python -m agentia.serve``, which reads ``AGENTIA_SERVICE`` and execs
:func:`service_command`; the Kubernetes Deployments spell out the same command. Module and
port come from :mod:`agentia.names`, never retyped. The image's build runs
``python -m agentia.serve --install-code DIR`` (stdlib only: no dependency is needed yet) to
put exactly the service's code there: the building blocks, its package, and what it hosts.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from agentia import names

SERVICE_ENV = "AGENTIA_SERVICE"
GRACEFUL_SHUTDOWN_S = 10  # below the pod's terminationGracePeriodSeconds


def service_command(app_id: str, python: str = "python") -> list[str]:
    """``python -m uvicorn <module>.app:create_app --factory`` on the service's app port."""
    if app_id not in names.SERVICE_MODULES:
        raise ValueError(f"unknown service '{app_id}'; one of: {', '.join(names.APP_IDS)}")
    return [
        python,
        "-m",
        "uvicorn",
        f"{names.SERVICE_MODULES[app_id]}.app:create_app",
        "--factory",
        "--host",
        "0.0.0.0",
        "--port",
        str(names.PORTS[app_id].app),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        str(GRACEFUL_SHUTDOWN_S),
    ]


def code_folders(app_id: str) -> list[str]:
    """The package folders (relative to the repository) that ``app_id``'s image runs."""
    if app_id not in names.SERVICE_MODULES:
        raise ValueError(f"unknown service '{app_id}'; one of: {', '.join(names.APP_IDS)}")
    return [
        "src/agentia",
        f"services/{app_id}/{names.SERVICE_MODULES[app_id]}",
        *names.SERVICE_EXTRA_CODE.get(app_id, ()),
    ]


def install_code(app_id: str, source: Path, target: Path) -> list[Path]:
    """Copy the service's packages from the repository at ``source`` into ``target``."""
    copied = []
    for folder in code_folders(app_id):
        dest = target / Path(folder).name
        shutil.copytree(
            source / folder, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        copied.append(dest)
    return copied


def main(argv: list[str] | None = None) -> int:
    """Exec the service named by ``$AGENTIA_SERVICE``; ``--check`` only prints its command,
    ``--install-code DIR`` copies its code (from the current directory) into DIR."""
    args = sys.argv[1:] if argv is None else argv
    app_id = os.environ.get(SERVICE_ENV, "")
    try:
        command = service_command(app_id, sys.executable)
    except ValueError as exc:
        print(f"{SERVICE_ENV}: {exc}", file=sys.stderr)
        return 2
    if "--install-code" in args:
        where = args[args.index("--install-code") + 1 :]
        if not where:
            print("--install-code needs the folder to install into", file=sys.stderr)
            return 2
        for path in install_code(app_id, Path.cwd(), Path(where[0])):
            print(f"installed {path}")
        return 0
    if "--check" in args:
        print(" ".join(command))
        return 0
    os.execv(sys.executable, command)  # noqa: S606 - replaces this process, as intended


if __name__ == "__main__":
    sys.exit(main())
