#!/usr/bin/env bash
# Sets up everything dsrl_ray needs in ./.venv (idempotent; re-runs only what changed).
# Needs only Python 3.11. Installs Debian's Mesa EGL/OSMesa libraries for headless
# MuJoCo rendering when they are missing and we may use apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup.sh: $python_bin is Python $("$python_bin" -V 2>&1); dsrl_ray needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || ! ldconfig -p 2>/dev/null | grep -q 'libOSMesa.so'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup.sh: installing Mesa EGL/OSMesa for headless rendering"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libgl1 libosmesa6 >/dev/null
  else
    echo "setup.sh: warning: libEGL/libOSMesa not found; GIF rendering will not work (apt-get install libegl1 libosmesa6)" >&2
  fi
fi

[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
stamp=.venv/.dsrl_ray-setup
want=$(cat requirements.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q -r requirements.txt
  # robomimic 0.3.0 declares torchvision and egl_probe, neither of which its dataset
  # and utility code imports; installing it without them keeps the CPU torch build.
  .venv/bin/python -m pip install -q --no-deps robomimic==0.3.0
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
echo "setup.sh: environment ready in .venv"
