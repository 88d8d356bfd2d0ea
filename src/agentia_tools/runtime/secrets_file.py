"""The mesh's secrets file: generated once, read by Dapr's local.file secret store.

It lives in the mesh's home folder with mode 0600 and is never printed. Infrastructure
credentials are added by :mod:`agentia_tools.runtime.infra`; this module adds the tokens between
each app and its sidecar.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from agentia import names
from agentia_tools.runtime.mesh import Tokens

SECRETS_FILE = "secrets.json"


def secrets_path(home: Path) -> Path:
    return home / SECRETS_FILE


def read_secrets(home: Path) -> dict[str, str]:
    try:
        data = json.loads(secrets_path(home).read_text())
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{secrets_path(home)} is not a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def write_secrets(home: Path, values: dict[str, str]) -> None:
    path = secrets_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh, indent=1, sort_keys=True)
    tmp.replace(path)


def ensure_tokens(home: Path) -> Tokens:
    """The Dapr API token and app API token, generated on first use and kept."""
    values = read_secrets(home)
    changed = False
    for key in (names.SECRET_DAPR_API_TOKEN, names.SECRET_APP_API_TOKEN):
        if not values.get(key):
            values[key] = secrets.token_urlsafe(32)
            changed = True
    if changed:
        write_secrets(home, values)
    return Tokens(values[names.SECRET_DAPR_API_TOKEN], values[names.SECRET_APP_API_TOKEN])
