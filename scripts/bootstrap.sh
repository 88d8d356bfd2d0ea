#!/usr/bin/env bash
# Create or refresh the project's virtualenv (.venv) from constraints.txt, the lock.
# Skips everything when the venv already matches the lock, so a second run takes a moment.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
if [[ -z "$PY" ]]; then
  echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

stamp_src="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
stamp=.venv/.agentia-stamp
if [[ -x .venv/bin/python && -f "$stamp" && "$(cat "$stamp")" == "$stamp_src" ]]; then
  exit 0
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "• creating .venv with $("$PY" --version)"
  if ! "$PY" -m venv .venv 2>/dev/null; then
    echo "• python venv module missing; installing python3-venv" >&2
    if [[ $(id -u) -eq 0 ]]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
      "$PY" -m venv .venv
    else
      echo "error: run: sudo apt-get install python3-venv" >&2; exit 1
    fi
  fi
fi
echo "• installing Python dependencies (pinned in constraints.txt)"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
  -e '.[tools,gateway,agent-runner,memory,scheduler,tool-mcp,dev,console]'
echo "$stamp_src" > "$stamp"
echo "• .venv ready"
