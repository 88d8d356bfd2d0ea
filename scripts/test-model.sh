#!/usr/bin/env bash
# The local-model suite (not part of `make test`: the first build takes minutes): builds or
# finds llama-server and SmolLM2-135M (`agentia model build`), brings the mesh up with the
# local model profile and the suite's model prices, runs tests/model_e2e through the
# gateway, and takes the mesh down again. Prints how long each part took.
#
# It stops a mesh already running first (so that the gateway starts with the suite's
# prices) and leaves none running: on a shared machine, run it under the mesh lock,
#   flock /tmp/agentia-mesh.lock scripts/test-model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/bootstrap.sh
.venv/bin/agentia model build
built=$((SECONDS - start))
.venv/bin/agentia down
trap '.venv/bin/agentia down' EXIT
export AGENTIA_MODEL_PRICES='{"offline": {"input_usd_per_1m": "1.00", "output_usd_per_1m": "2.00"}, "compatible:smollm2-135m": {"input_usd_per_1m": "100", "output_usd_per_1m": "200"}}'
.venv/bin/agentia up --model local
up=$((SECONDS - start - built))
AGENTIA_MODEL_E2E=1 .venv/bin/pytest -q -s -p no:cacheprovider tests/model_e2e "$@"
echo "• local-model suite: model build ${built}s, mesh up ${up}s, tests $((SECONDS - start - built - up))s, total $((SECONDS - start))s"
