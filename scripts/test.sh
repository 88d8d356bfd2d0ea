#!/usr/bin/env bash
# The test suite, as CI runs it: lint, type checks, then every test against real Dapr
# sidecars, RabbitMQ, PostgreSQL and Redis (which the test fixtures start themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "• lint (ruff)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "• types (mypy)"
.venv/bin/mypy src services workflows console
echo "• Dapr runtime (built once from its Go module when missing)"
.venv/bin/agentia dapr
echo "• tests (pytest)"
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $rc
