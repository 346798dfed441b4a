#!/usr/bin/env bash
# Installs everything slm needs to build, test and benchmark, from Debian 12 packages.
# Run as root (or it uses sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-openmp-dev   # OpenBLAS, the OpenMP build (its threads never fight ours)
  libfmt-dev libcli11-dev nlohmann-json3-dev
  libcpp-httplib-dev       # the HTTP layer of slm-server (and slm-bench --server)
  libpcre2-dev             # Unicode regexes of the BPE pre-tokenizers
  libedit-dev              # line editing and history in slm-chat (BSD licence)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev # libFuzzer targets and sanitizers
  python3-numpy            # ../shared/tools/synth_gguf.py, for benchmark models
  python3-jsonschema       # test_grammar_validity checks generated JSON with a validator that is not ours
  g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user  # NEON kernels, cross-compiled and run under qemu
  nginx-light              # the replicas test: nginx in front of two slm-servers (its own config, ports and pid)
  libjs-marked libjs-highlight.js node-dompurify  # the chat page's markdown, highlighting, sanitizer (embedded at build time)
)
# The chat page's browser test: Debian's chromium, driven by puppeteer-core (nothing downloads a browser).
if ! command -v chromium > /dev/null; then
  PACKAGES+=(chromium)
fi
# node and npm run the end-to-end tests with the official `openai` client. A machine that has
# them already keeps its own: NodeSource's nodejs bundles npm and conflicts with Debian's npm.
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  PACKAGES+=(nodejs npm)
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Recommended packages too: the cross compiler needs its Recommends (libc6-dev-arm64-cross).
$SUDO apt-get install -y -qq "${PACKAGES[@]}"
