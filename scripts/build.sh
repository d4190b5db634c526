#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh) and builds clipxai into build/ (binary: build/clipxai).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
