#!/usr/bin/env bash
# Node setup for the Ray cluster launcher (the YAMLs' setup_commands run it on every node).
# 1. Python 3.11: the system's python3.11, else a standalone build fetched with uv.
# 2. The project's venv (.venv) with its pinned requirements: scripts/setup.sh (idempotent).
# 3. ray[default] at the pinned Ray version (dashboard and job server for `ray job submit`).
# 4. The venv first on PATH in login shells, so the launcher's `ray start` and `ray submit`'s
#    `python` are the venv's.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=$(command -v python3.11 || true)
if [ -z "$python_bin" ]; then
  uv_bin=$(command -v uv || echo "$HOME/.local/bin/uv")
  [ -x "$uv_bin" ] || curl -LsSf https://astral.sh/uv/install.sh | sh
  "$uv_bin" python install 3.11
  python_bin=$("$uv_bin" python find 3.11)
fi
PYTHON="$python_bin" bash scripts/setup.sh

ray_version=$(sed -n 's/^ray\[rllib\]==\([0-9.]*\).*/\1/p' requirements.txt)
if [ -z "$ray_version" ]; then
  echo "setup_node.sh: no 'ray[rllib]==X.Y.Z' pin in requirements.txt" >&2
  exit 1
fi
.venv/bin/python -m pip install -q "ray[default]==${ray_version}"

line="source $PWD/.venv/bin/activate"
grep -qxF "$line" "$HOME/.bashrc" 2>/dev/null || echo "$line" >> "$HOME/.bashrc"
echo "setup_node.sh: $(hostname) ready: $PWD/.venv ($(.venv/bin/python -V), ray ${ray_version})"
