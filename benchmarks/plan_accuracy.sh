#!/usr/bin/env bash
# How close slm-plan's predictions come to what slm does on this machine: for each benchmark
# shape (Qwen2.5-0.5B, Gemma-3-1B, Phi-4-mini and the 8-layer Qwen3-30B-A3B, at Q4_K_M and
# Q8_0; the hybrids Qwen3.5-0.8B and LFM2-1.2B when their files are there), slm-plan --json
# against slm-bench's pp512 and tg128 and the peak resident memory of that slm-bench run
# (/usr/bin/time -v), in one run. The goal: speed within 15%, memory within 5%.
#
#   benchmarks/plan_accuracy.sh                # -t 2 -r 3
#   benchmarks/plan_accuracy.sh -t 1 -r 2      # threads and repetitions of slm-bench
#   benchmarks/plan_accuracy.sh -r 1 qwen2.5-0.5b-Q8_0   # only these shapes (names in benchmarks/models)
#
# slm-plan --calibrate runs first (under 20 s), so the predictions use rates measured in the same
# run, at the same load. Missing models are made into benchmarks/models/ (git-ignored) with
# ../shared/tools/synth_gguf.py --like (random weights time exactly like real ones) and
# slm-quantize; a Q8_0 file is quantized from the F16 file when there is one, else from the
# Q4_K_M file (the same shapes and per-tensor types either way). Tools come from
# $SLM_BUILD_DIR/bin (default build/). slm-bench runs with --bw-mib 16, and those 16 MiB are taken
# off its peak RSS before the comparison. The slm-plan -c is 512: slm-bench's pp512 session.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SLM_SHARED_DIR:-$root/../shared}
bin=${SLM_BUILD_DIR:-$root/build}/bin
models=$root/benchmarks/models
threads=2
repetitions=3
only=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -t) threads=$2; shift 2 ;;
    -r) repetitions=$2; shift 2 ;;
    -*) echo "usage: $0 [-t THREADS] [-r REPETITIONS] [SHAPE...]" >&2; exit 2 ;;
    *) only+=("$1"); shift ;;
  esac
done
for tool in slm-plan slm-bench slm-quantize; do
  [[ -x $bin/$tool ]] || { echo "$bin/$tool is missing: build it (cmake --build <dir> --target $tool)" >&2; exit 1; }
done
mkdir -p "$models"

# make LIKE VOCAB TYPE: benchmarks/models/LIKE-TYPE.gguf, from its F16 file (made if needed) or,
# for Q8_0, from an existing Q4_K_M file.
make_model() {
  local like=$1 vocab=$2 type=$3 out=$models/$1-$3.gguf f16=$models/$1-F16.gguf
  [[ -f $out ]] && return
  if [[ $type == Q8_0 && ! -f $f16 && -f $models/$like-Q4_K_M.gguf ]]; then
    echo "making $out from the Q4_K_M file" >&2
    "$bin/slm-quantize" "$models/$like-Q4_K_M.gguf" "$out" Q8_0 >&2
    return
  fi
  if [[ ! -f $f16 ]]; then
    echo "making $f16" >&2
    /usr/bin/python3 "$shared/tools/synth_gguf.py" --like "$like" --vocab "$shared/vocab/$vocab" --type f16 -o "$f16.part" >&2
    mv "$f16.part" "$f16"
  fi
  echo "making $out" >&2
  "$bin/slm-quantize" "$f16" "$out" "$type" >&2
}

shapes=(
  "qwen2.5-0.5b ggml-vocab-qwen2.gguf Q4_K_M"
  "qwen2.5-0.5b ggml-vocab-qwen2.gguf Q8_0"
  "gemma-3-1b ggml-vocab-llama-spm.gguf Q4_K_M"
  "gemma-3-1b ggml-vocab-llama-spm.gguf Q8_0"
  "phi-4-mini ggml-vocab-phi-3.gguf Q4_K_M"
  "phi-4-mini ggml-vocab-phi-3.gguf Q8_0"
  "qwen3-30b-a3b-8layers - Q4_K_M"
  "qwen3.5-0.8b - Q4_K_M"
  "lfm2-1.2b - Q4_K_M"
)
files=()
for shape in "${shapes[@]}"; do
  read -r like vocab type <<<"$shape"
  if [[ ${#only[@]} -gt 0 && ! " ${only[*]} " == *" $like-$type "* ]]; then continue; fi
  if [[ $vocab == - ]]; then  # made by hand (the 8 of 48 layers, the hybrids): only used when present
    [[ -f $models/$like-$type.gguf ]] && files+=("$models/$like-$type.gguf")
    continue
  fi
  make_model "$like" "$vocab" "$type"
  files+=("$models/$like-$type.gguf")
done

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/slm-plan" --calibrate -t "$threads"

bandwidth_buffer_kib=$((16 * 1024))
printf '\n| model | plan MiB | peak RSS MiB | ratio | pp512 plan | pp512 bench | ratio | tg128 plan | tg128 bench | ratio |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for file in "${files[@]}"; do
  plan=$("$bin/slm-plan" --json -c 512 -t "$threads" "$file")
  bench_json=$(mktemp)
  time_log=$(mktemp)
  /usr/bin/time -v -o "$time_log" "$bin/slm-bench" -m "$file" -p 512 -n 128 -r "$repetitions" -t "$threads" \
    --bw-mib 16 -o json >"$bench_json"
  rss_kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$time_log")
  jq -r --argjson plan "$plan" --argjson rss_kib "$rss_kib" --argjson buffer_kib "$bandwidth_buffer_kib" \
    --arg name "$(basename "$file" .gguf)" '
    def mib: . / 1048576;
    def ratio(a; b): (a / b * 100 | round / 100);
    (map(select(.n_prompt == 512)) | .[0].avg_ts) as $pp |
    (map(select(.n_gen == 128)) | .[0].avg_ts) as $tg |
    (($rss_kib - $buffer_kib) * 1024) as $rss |
    $plan.memory.total_bytes as $mem |
    $plan.predicted.pp512_tokens_per_second as $ppp |
    $plan.predicted.tg128_tokens_per_second as $tgp |
    "| \($name) | \($mem | mib | round) | \($rss | mib | round) | \(ratio($mem; $rss)) | " +
    "\($ppp * 10 | round / 10) | \($pp * 10 | round / 10) | \(ratio($ppp; $pp)) | " +
    "\($tgp * 10 | round / 10) | \($tg * 10 | round / 10) | \(ratio($tgp; $tg)) |"' "$bench_json"
  rm -f "$bench_json" "$time_log"
done
echo
echo "ratio = slm-plan / measured; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
