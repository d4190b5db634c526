#!/usr/bin/env bash
# Installs the Debian packages clipxai needs, by role; idempotent.
#   scripts/setup.sh run    build and run the clipxai binary (explain, serve): what the demo
#                           and the Docker image need, nothing else
#   scripts/setup.sh test   run + the test suite: GoogleTest, the Python reference stack,
#                           Chromium and playwright-core's Node, the fuzzers' clang
#   scripts/setup.sh train  run + what scripts/train_model.py and the scene renderer use
#   scripts/setup.sh        every role
set -euo pipefail
cd "$(dirname "$0")/.."

run_packages=(
  build-essential cmake pkg-config ccache
  libtorch-dev libopenblas0-pthread  # without libopenblas0-pthread LibTorch's BLAS is ~50x slower
  libopencv-dev libjpeg-dev libpng-dev libdeflate-dev libcli11-dev nlohmann-json3-dev libicu-dev
  zlib1g-dev
  libcpp-httplib-dev liblink-grammar-dev  # clipxai serve; noun phrases (--phrases)
)
python_packages=(python3-torch python3-pil python3-skimage python3-numpy)
test_packages=(
  libgtest-dev
  "${python_packages[@]}"  # reference implementations and fixtures (scripts/*.py)
  fonts-noto-color-emoji
  time  # /usr/bin/time: peak memory in tests/cli/hostile_inputs.sh and scripts/bench.sh
  clang-14 libclang-rt-14-dev libomp-14-dev  # scripts/fuzz.sh: libFuzzer, ASan, UBSan
  chromium  # the HTML report and the demo page in headless Chromium
  curl      # tests/cli/serve_api.sh
)
train_packages=("${python_packages[@]}" fonts-noto-color-emoji)

roles=("$@")
[ ${#roles[@]} -gt 0 ] || roles=(run test train)
packages=("${run_packages[@]}")
for role in "${roles[@]}"; do
  case "$role" in
    run) ;;
    test) packages+=("${test_packages[@]}") ;;
    train) packages+=("${train_packages[@]}") ;;
    *) echo "setup.sh: unknown role '$role' (run, test, train)" >&2; exit 2 ;;
  esac
done
# Node for the browser tests: Debian's, unless the machine already has one (a nodesource
# nodejs would conflict with Debian's npm).
needs_node=false
for role in "${roles[@]}"; do [ "$role" = test ] && needs_node=true; done
if $needs_node && ! command -v node >/dev/null; then packages+=(nodejs npm); fi

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

# playwright-core drives /usr/bin/chromium; it never downloads a browser.
if $needs_node && [ ! -d tests/browser/node_modules/playwright-core ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund --silent
fi
