#!/usr/bin/env bash
# Installs every Debian package clipxai needs to build, test and run its scripts. Idempotent.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libtorch-dev libopenblas0-pthread
  libopencv-dev libjpeg-dev libpng-dev libcli11-dev nlohmann-json3-dev libgtest-dev libicu-dev
  zlib1g-dev
  python3-torch python3-pil python3-skimage python3-numpy
  fonts-noto-color-emoji
  time  # /usr/bin/time: peak memory in tests/cli/hostile_inputs.sh and scripts/bench.sh
  clang-14 libclang-rt-14-dev libomp-14-dev  # scripts/fuzz.sh: libFuzzer, ASan, UBSan
  chromium  # tests/cli/html_report_chromium.sh loads the HTML report in headless Chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
