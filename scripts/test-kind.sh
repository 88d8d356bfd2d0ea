#!/usr/bin/env bash
# The kind end-to-end suite (not part of `make test`): brings the mesh up (overlay
# `policies`) on the kind cluster (building what is missing; reusing the cluster when it is up), then runs
# tests/kind_e2e against it. Prints how long each half took.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
# The `policies` overlay (dev + the NetworkPolicies and their engine), so the suite's
# policy tests have something to check; pass --overlay to choose another.
overlay=(--overlay policies)
for arg in "$@"; do
  case "$arg" in --overlay|--overlay=*) overlay=() ;; esac
done
.venv/bin/agentia kind up "${overlay[@]}" "$@"
up=$((SECONDS - start))
AGENTIA_KIND_E2E=1 .venv/bin/pytest -q -p no:cacheprovider tests/kind_e2e
echo "• kind suite: agentia kind up ${up}s, tests $((SECONDS - start - up))s, total $((SECONDS - start))s"
