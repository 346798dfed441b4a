#!/usr/bin/env bash
# Cross-compiles the kernels and their checks for AArch64 and runs them under qemu, so that
# the NEON kernels are tested on an x86 machine. Needs g++-aarch64-linux-gnu and qemu-user
# (tools/install-deps.sh). Usage: tests/cross/run-neon-tests.sh [build-dir]
# Exits non-zero if the build fails, a check fails, or the NEON kernels were not the ones checked.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD="${1:-$HERE/../../build-neon}"
cmake -S "$HERE" -B "$BUILD" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$HERE/aarch64.cmake" > /dev/null
cmake --build "$BUILD"
# -cpu max has the dot product and the int8 matrix multiply instructions: the dotprod integer
# kernels and the i8mm prompt kernels are checked too.
SLM_EXPECT_DOTPROD=1 SLM_EXPECT_I8MM=1 qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu "$BUILD/kernel_check"
