#!/usr/bin/env bash
# Configures and builds sparta (Release) into ${SPARTA_BUILD_DIR:-build}, then
# makes the Python package built there (BUILD/python/sparta) importable by
# Debian's /usr/bin/python3 and by the project's .venv: one .pth file in
# each one's site folder (the user site of /usr/bin/python3), naming
# BUILD/python. SPARTA_NO_PTH=1 skips that; `pip install .` installs a copy
# instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SPARTA_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
ninja -C "$BUILD"
if [ -z "${SPARTA_NO_PTH:-}" ] && [ -d "$BUILD/python/sparta" ]; then
  pydir=$(cd "$BUILD/python" && pwd)
  sites=("$(/usr/bin/python3 -m site --user-site)")
  [ -x .venv/bin/python ] && sites+=("$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')")
  for site in "${sites[@]}"; do
    mkdir -p "$site" && echo "$pydir" > "$site/sparta-build.pth"
  done
  echo "build: import sparta -> $pydir (for /usr/bin/python3 and .venv)"
fi
