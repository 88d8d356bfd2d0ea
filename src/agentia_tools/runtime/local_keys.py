"""API keys of a local mesh, kept hashed in its secrets file (Dapr's local.file secret store).

``agentia up`` makes one write key for the machine's user on first start and leaves it in
``.agentia/api-key`` (mode 0600), so `curl` and the tests have a key without a manual step;
`agentia keys` makes, lists and revokes others. On Kubernetes the same JSON document lives
in the ``gateway-api-keys`` Secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentia import names
from agentia.apikeys import KeyRecord, KeyRing, ModelLimit, Scope, new_key
from agentia_tools.runtime.mesh import sidecar_name
from agentia_tools.runtime.secrets_file import read_secrets, write_secrets
from agentia_tools.runtime.supervisor import Supervisor

LOCAL_KEY_FILE = "api-key"


def key_ring(home: Path) -> KeyRing:
    return KeyRing.from_secret(read_secrets(home).get(names.SECRET_GATEWAY_API_KEYS))


def _save(home: Path, ring: KeyRing) -> None:
    values = read_secrets(home)
    values[names.SECRET_GATEWAY_API_KEYS] = ring.to_secret()
    write_secrets(home, values)


def create_key(
    home: Path,
    name: str,
    scope: Scope,
    rate_limit_per_minute: int | None = None,
    token_budget_per_day: int | None = None,
    cost_budget_micro_usd_per_day: int | None = None,
    model_limits: dict[str, ModelLimit] | None = None,
) -> tuple[str, KeyRecord]:
    """Make a key; the caller shows it once. Names are unique."""
    ring = key_ring(home)
    if any(r.name == name for r in ring.keys.values()):
        raise ValueError(f"a key named '{name}' exists already (revoke it first)")
    key, record = new_key(
        name,
        scope,
        rate_limit_per_minute,
        token_budget_per_day,
        cost_budget_micro_usd_per_day,
        model_limits,
    )
    ring.keys[record.id] = record
    _save(home, ring)
    return key, record


def revoke_key(home: Path, id_or_name: str) -> KeyRecord:
    ring = key_ring(home)
    for key_id, record in list(ring.keys.items()):
        if id_or_name in (key_id, record.name):
            del ring.keys[key_id]
            _save(home, ring)
            return record
    raise KeyError(f"no key with id or name '{id_or_name}'")


def reload_gateway_secrets(home: Path) -> bool:
    """Make a running gateway see changed keys. Dapr's local.file secret store reads its file
    once, at start: restart the gateway's sidecar (the gateway re-reads the keys from it
    within its refresh interval). Kubernetes' secret store reads live: no restart there.
    False when the mesh is not running (the next start reads the file anyway)."""
    sup = Supervisor(home)
    if not sup.running():
        return False
    name = sidecar_name(names.GATEWAY)
    state = {p.name: p.state for p in sup.processes()}.get(name)
    if state not in ("RUNNING", "STARTING"):
        return False
    sup.stop(name)
    sup.start(name)
    return True


def local_key_path(home: Path) -> Path:
    return home / LOCAL_KEY_FILE


def ensure_local_key(home: Path) -> Path:
    """The machine user's write key, made on first use; returns where it is kept."""
    path = local_key_path(home)
    ring = key_ring(home)
    if path.exists():
        key = path.read_text().strip()
        if ring.verify(key) is not None:
            return path
    for record in [r for r in ring.keys.values() if r.name == "local"]:
        del ring.keys[record.id]
    _save(home, ring)
    key, _ = create_key(home, "local", "write")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return path


def read_local_key(home: Path) -> str | None:
    path = local_key_path(home)
    return path.read_text().strip() if path.exists() else None
