# The README's two commands are `make up` and `make test`; the rest are for developers.
.PHONY: up down status test check lint types unit dapr venv bench kind-build test-kind test-kind-model model-build test-model

venv:
	@scripts/bootstrap.sh

up: venv            ## start the whole mesh and show what is up
	@.venv/bin/agentia up

down: venv          ## stop everything the mesh started
	@.venv/bin/agentia down

status: venv
	@.venv/bin/agentia status

test: venv          ## the full test suite (what CI runs): lint, types, unit, integration, chaos smoke
	@scripts/test.sh

check: venv lint types unit   ## fast developer loop: lint, types, unit tests

lint:
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

types:
	@.venv/bin/mypy src services workflows console

unit:
	@.venv/bin/pytest -q tests/unit

bench: venv         ## benchmarks (figures side by side with their baselines; see bench/)
	@.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[tools,gateway,agent-runner,memory,scheduler,tool-mcp,dev,console,bench]'
	@.venv/bin/python bench/invoke_overhead.py
	@.venv/bin/python bench/pubsub.py
	@.venv/bin/python bench/runs.py
	@.venv/bin/python bench/gateway.py
	@.venv/bin/python bench/hops.py
	@.venv/bin/python bench/memory.py
	@.venv/bin/python bench/workflows.py
	@.venv/bin/python bench/history.py
	@.venv/bin/python bench/scale.py
	@.venv/bin/python bench/queue_depths.py

kind-build: venv    ## build (or find cached) everything the kind cluster needs, offline if need be
	@.venv/bin/agentia kind build

test-kind: venv     ## the kind end-to-end suite: `agentia kind up` (reused if up), then tests/kind_e2e
	@scripts/test-kind.sh

model-build: venv   ## build (or find cached) llama-server and the local model (docs/models.md)
	@.venv/bin/agentia model build

test-model: venv    ## the local-model suite: a real llama-server behind the mesh (not in `make test`)
	@scripts/test-model.sh

test-kind-model: venv  ## the local model server on kind: model build, `kind up --overlay local-model`, its test
	@.venv/bin/agentia model build
	@.venv/bin/agentia kind up --overlay local-model
	@AGENTIA_KIND_E2E=1 AGENTIA_KIND_LOCAL_MODEL=1 .venv/bin/pytest -q -p no:cacheprovider tests/kind_e2e/test_local_model.py
