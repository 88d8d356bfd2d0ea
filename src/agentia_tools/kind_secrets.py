"""The Secrets `agentia kind up` creates: generated values, never in a file or a log.

- ``agentia-infra``: the servers' own passwords (PostgreSQL, RabbitMQ, Redis);
- one Secret per local secret name, holding one key of that name (``postgres-url``, …):
  Dapr's kubernetes secret store answers secret ``x`` from the Secret named ``x``, so the
  components' ``secretKeyRef``s and the services' secret reads work unchanged;
- ``dapr-api-token`` and ``app-api-token`` with key ``token``, as Dapr's
  ``api-token-secret`` / ``app-token-secret`` annotations read them;
- ``gateway-api-keys``: the gateway's key ring (SHA-256 hashes only), with one write key
  for the user, whose plaintext is kept on this machine in ``.agentia/kind-api-key``.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from agentia import names
from agentia_tools.kind_render import NAMESPACE, PART_OF, TOKEN_KEY

INFRA_SECRET: Final = "agentia-infra"  # noqa: S105 - a Secret's name
INFRA_HOSTS: Final = {
    "postgres": "postgres.agentia.svc.cluster.local",
    "rabbitmq": "rabbitmq.agentia.svc.cluster.local",
    "redis": "redis.agentia.svc.cluster.local",
}
Doc = dict[str, Any]


def secret_manifests(
    passwords: dict[str, str],
    tokens: dict[str, str],
    openai_api_key: str | None = None,
    api_keys: str | None = None,
) -> list[Doc]:
    """The Secrets, from the servers' passwords (keys: postgres, rabbitmq, redis), the two
    tokens (by secret name), an optional OpenAI key and the gateway's key ring (hashes)."""
    pg, mq = quote(passwords["postgres"], safe=""), quote(passwords["rabbitmq"], safe="")
    host = INFRA_HOSTS
    values = {
        names.SECRET_POSTGRES_URL: f"postgresql://agentia:{pg}@{host['postgres']}:5432/agentia",
        names.SECRET_POSTGRES_DSN: (
            f"host={host['postgres']} port=5432 user=agentia "
            f"password={passwords['postgres']} dbname=agentia sslmode=disable"
        ),
        names.SECRET_RABBITMQ_URL: f"amqp://agentia:{mq}@{host['rabbitmq']}:5672/",
        names.SECRET_REDIS_HOST: f"{host['redis']}:6379",
        names.SECRET_REDIS_PASSWORD: passwords["redis"],
    }
    if openai_api_key:
        values[names.SECRET_OPENAI_API_KEY] = openai_api_key
    if api_keys:
        values[names.SECRET_GATEWAY_API_KEYS] = api_keys
    data: dict[str, dict[str, str]] = {
        INFRA_SECRET: {f"{k}-password": v for k, v in sorted(passwords.items())},
        **{name: {name: value} for name, value in values.items()},
        names.SECRET_DAPR_API_TOKEN: {TOKEN_KEY: tokens[names.SECRET_DAPR_API_TOKEN]},
        names.SECRET_APP_API_TOKEN: {TOKEN_KEY: tokens[names.SECRET_APP_API_TOKEN]},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": PART_OF},
            "type": "Opaque",
            "stringData": kv,
        }
        for name, kv in data.items()
    ]
