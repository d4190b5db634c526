#!/usr/bin/env bash
# The README's first command: sets up, builds, and explains the example scene with the bundled
# model, writing overlays to clipxai-out/ and the JSON report to clipxai-out/demo.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --lean
./build/clipxai explain --json clipxai-out/demo.json examples/girl_boy_desktop.png \
  girl boy "desktop computer"
