#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh) and builds clipxai into build/ (binary:
# build/clipxai).
#   scripts/build.sh         everything, the tests included (setup.sh's run and test roles)
#   scripts/build.sh --lean  the clipxai binary alone, with only what building and running it
#                            needs (setup.sh run): the demo and the Docker image
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--lean" ]; then
  bash scripts/setup.sh run
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build build -j"$(nproc)" --target clipxai
else
  bash scripts/setup.sh run test
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
  cmake --build build -j"$(nproc)"
fi
