#!/usr/bin/env bash
# Benchmark slm on models of real sizes: random weights in the exact shapes of Qwen2.5-0.5B and
# Llama-3.2-1B (with their real tokenizers), quantized the way the published files are.
#
#   benchmarks/run.sh                      # slm-bench -p 512 -n 128 -r 3 -t 2
#   benchmarks/run.sh -p 128 -n 32 -r 1    # other slm-bench arguments replace those
#
# Models are made once into benchmarks/models/ (git-ignored, ~4.5 GB): synth_gguf.py writes the
# F16 files, slm-quantize the rest. The tools come from $SLM_BUILD_DIR/bin (default build/), built
# there if missing. Needs /usr/bin/python3 with numpy (Debian: python3-numpy) and ../shared.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SLM_SHARED_DIR:-$root/../shared}
build=${SLM_BUILD_DIR:-$root/build}
models=$root/benchmarks/models
bin=$build/bin

if [[ ! -x $bin/slm-quantize || ! -x $bin/slm-bench ]]; then
  echo "building slm-quantize and slm-bench in $build" >&2
  [[ -f $build/CMakeCache.txt ]] || cmake -S "$root" -B "$build" -G Ninja >&2
  cmake --build "$build" --target slm-quantize slm-bench >&2
fi

mkdir -p "$models"

# synth LIKE VOCAB OUT: the F16 file of a published shape.
synth() {
  [[ -f $3 ]] && return
  echo "making $3" >&2
  /usr/bin/python3 "$shared/tools/synth_gguf.py" --like "$1" --vocab "$shared/vocab/$2" --type f16 -o "$3.part" >&2
  mv "$3.part" "$3"
}

# quantize IN OUT TYPE
quantize() {
  [[ -f $2 ]] && return
  echo "making $2" >&2
  "$bin/slm-quantize" "$1" "$2" "$3" >&2
}

qwen=$models/qwen2.5-0.5b
llama=$models/llama-3.2-1b
synth qwen2.5-0.5b ggml-vocab-qwen2.gguf "$qwen-F16.gguf"
synth llama-3.2-1b ggml-vocab-llama-bpe.gguf "$llama-F16.gguf"
quantize "$qwen-F16.gguf" "$qwen-Q4_K_M.gguf" Q4_K_M
quantize "$qwen-F16.gguf" "$qwen-Q8_0.gguf" Q8_0
quantize "$llama-F16.gguf" "$llama-Q4_K_M.gguf" Q4_K_M

# The published Qwen2.5-0.5B-Instruct Q4_K_M file is 397.8 MB; ours should match it (same
# shapes, same per-tensor types, same tokenizer metadata).
qwen_bytes=$(stat -c %s "$qwen-Q4_K_M.gguf")
echo "qwen2.5-0.5b Q4_K_M: $(awk -v b="$qwen_bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }') (published file: 397.8 MB)" >&2

if [[ $# -eq 0 ]]; then set -- -p 512 -n 128 -r 3 -t 2; fi
echo "kernels: SLM_ISA=${SLM_ISA:-<unset: best available>}" >&2
"$bin/slm-bench" -m "$qwen-Q4_K_M.gguf,$qwen-Q8_0.gguf,$llama-Q4_K_M.gguf" "$@"
