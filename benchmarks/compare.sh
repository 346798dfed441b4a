#!/usr/bin/env bash
# slm side by side with llama.cpp and ik_llama.cpp on the same files, in one run on one machine:
# the only kind of speed comparison the README shows.
#
#   benchmarks/compare.sh MODEL.gguf...                 # pp512 and tg128, 2 threads, 3 runs, 2 rounds
#   benchmarks/compare.sh -p 512 -n 128 -d 4096 -t 2 -r 3 --rounds 2 MODEL.gguf...
#   benchmarks/compare.sh --slm-activations int16,int8 MODEL.gguf...   # slm once per --activations
#
# Each round runs every engine once per file, in an order that rotates from round to round (a
# machine that slows down during the run then penalizes each engine alike); an engine's figure is
# the best of its rounds' means. The table gives t/s and slm's ratio to each peer, and names the
# CPU and the instruction set each engine ran. The peers come from ../shared/tools/build_peers.sh
# (PEERS=dir, default ../peers beside the checkout; ik_llama.cpp runs with -rtr 1, its fastest CPU
# mode); a peer that is not built is left out with a note. slm comes from $SLM_BUILD_DIR/bin
# (default build/).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SLM_BUILD_DIR:-$root/build}
peers=${PEERS:-$root/../peers}
n_prompt=512 n_gen=128 depth=0 threads=2 reps=3 rounds=2
slm_activations=int16
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
models=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -p) n_prompt=$2; shift 2 ;;
    -n) n_gen=$2; shift 2 ;;
    -d) depth=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -r) reps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --slm-activations) slm_activations=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) models+=("$1"); shift ;;
  esac
done
[[ ${#models[@]} -gt 0 ]] || { echo "compare.sh: give at least one GGUF file (see --help)" >&2; exit 2; }
for m in "${models[@]}"; do [[ -f $m ]] || { echo "compare.sh: no such file: $m" >&2; exit 2; }; done
for v in "$n_prompt" "$n_gen" "$depth" "$threads" "$reps" "$rounds"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "compare.sh: numbers only, not '$v'" >&2; exit 2; }
done

if [[ ! -x $build/bin/slm-bench ]]; then
  echo "building slm-bench in $build" >&2
  [[ -f $build/CMakeCache.txt ]] || cmake -S "$root" -B "$build" -G Ninja >&2
  cmake --build "$build" --target slm-bench >&2
fi
# slm once per --activations value: engine "slm" (int16, the default) and "slm-int8".
engines=()
IFS=, read -ra slm_precisions <<<"$slm_activations"
for a in "${slm_precisions[@]}"; do
  case $a in
    int16) engines+=(slm) ;;
    int8) engines+=(slm-int8) ;;
    *) echo "compare.sh: --slm-activations takes int16 and int8, not '$a'" >&2; exit 2 ;;
  esac
done
llama_bench=$peers/llama.cpp/build/bin/llama-bench
ik_bench=$peers/ik_llama.cpp/build/bin/llama-bench
if [[ -x $llama_bench ]]; then engines+=(llama.cpp); else echo "note: $llama_bench missing (build_peers.sh): llama.cpp left out" >&2; fi
if [[ -x $ik_bench ]]; then engines+=(ik); else echo "note: $ik_bench missing (build_peers.sh with IK_GIT): ik_llama.cpp left out" >&2; fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
depth_args=()
[[ $depth -gt 0 ]] && depth_args=(-d "$depth")

# run ENGINE MODEL FILE: one llama-bench-style JSON array of the pp and tg tests into FILE
run() {
  local common=(-m "$2" -p "$n_prompt" -n "$n_gen" -t "$threads" -r "$reps" -o json "${depth_args[@]}")
  case $1 in
    slm) "$build/bin/slm-bench" "${common[@]}" --bw-mib 1 >"$3" ;;
    slm-int8) "$build/bin/slm-bench" "${common[@]}" --bw-mib 1 --activations int8 >"$3" ;;
    llama.cpp) "$llama_bench" "${common[@]}" >"$3" 2>/dev/null ;;
    ik) # ik_llama.cpp's llama-bench has no -d: its -gp DEPTH,N is tg N after a prompt of DEPTH
      if [[ $depth -gt 0 ]]; then
        local ik_args=(-m "$2" -p 0 -n 0 -t "$threads" -r "$reps" -o json -gp "$depth,$n_gen")
        [[ $n_prompt -gt 0 ]] && echo "note: ik_llama.cpp has no pp at a depth: only its tg @ d$depth is run" >&2
        "$ik_bench" "${ik_args[@]}" -rtr 1 >"$3" 2>/dev/null
      else
        "$ik_bench" "${common[@]}" -rtr 1 >"$3" 2>/dev/null
      fi ;;
  esac
}

n_engines=${#engines[@]}
for ((round = 0; round < rounds; ++round)); do
  for mi in "${!models[@]}"; do
    for ((k = 0; k < n_engines; ++k)); do
      engine=${engines[$(((k + round) % n_engines))]}
      echo "round $((round + 1))/$rounds: $engine on $(basename "${models[$mi]}")" >&2
      run "$engine" "${models[$mi]}" "$out/$engine@$mi@$round.json" ||
        echo "note: $engine failed on ${models[$mi]}" >&2
    done
  done
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
# isa FLAGS...: the instruction sets that gcc enables with these flags on this machine.
isa() {
  gcc "$@" -dM -E - </dev/null 2>/dev/null |
    sed -n 's/^#define __\(AVX512VNNI\|AVXVNNI\|AVX512BF16\|AVX512F\|AVX2\|AMX_INT8\|ARM_FEATURE_DOTPROD\|ARM_FEATURE_MATMUL_INT8\)__ 1$/\1/p' |
    sort | tr '\n' ' ' | sed 's/ $//'
}
# peer_isa BENCH: how the peer was compiled, read from its CMakeCache.txt (build_peers.sh builds
# with -DGGML_NATIVE=ON, and adds -mno-amx-* where AMX dies), and what that enables here.
peer_isa() {
  local cache=$(dirname "$(dirname "$(dirname "$1")")")/build/CMakeCache.txt
  [[ -f $cache ]] || { echo "?"; return; }
  local native flags
  native=$(sed -n 's/^GGML_NATIVE:BOOL=//p' "$cache")
  flags=$(sed -n 's/^CMAKE_C_FLAGS:STRING=//p' "$cache")
  if [[ $native == ON ]]; then
    echo "-march=native${flags:+ $flags}: $(isa -march=native $flags)"
  else
    echo "GGML_NATIVE=${native:-?}${flags:+, $flags}"
  fi
}
peer_isas=""
for e in "${engines[@]}"; do
  case $e in
    llama.cpp) peer_isas+="llama.cpp: $(peer_isa "$llama_bench"); " ;;
    ik) peer_isas+="ik_llama.cpp: $(peer_isa "$ik_bench"); " ;;
  esac
done
/usr/bin/python3 - "$out" "$cpu" "$peer_isas" "$threads" "${engines[@]}" -- "${models[@]}" <<'EOF'
import json, os, sys
out, cpu, peer_isas, threads = sys.argv[1:5]
rest = sys.argv[5:]
engines, models = rest[:rest.index("--")], rest[rest.index("--") + 1:]
best, slm_isa = {}, "?"
for name in os.listdir(out):
    parts = name.removesuffix(".json").split("@")  # ENGINE@MODEL@ROUND.json ("llama.cpp" has a dot)
    if len(parts) != 3:
        continue
    engine, mi, _round = parts
    try:
        rows = json.load(open(os.path.join(out, name)))
    except (json.JSONDecodeError, OSError):
        continue
    for row in rows:
        if "n_prompt" not in row or "avg_ts" not in row:
            continue  # slm-bench's speculative rows, if any
        test = f"pp{row['n_prompt']}" if row["n_prompt"] > 0 else f"tg{row['n_gen']}"
        if row.get("n_depth", 0):
            test += f" @ d{row['n_depth']}"
        elif "@pp" in row.get("test", ""):  # ik_llama.cpp's -gp: tg n_gen after n_prompt tokens
            test = f"tg{row['n_gen']} @ d{row['n_prompt']}"
        key = (int(mi), test, engine)
        best[key] = max(best.get(key, 0.0), float(row["avg_ts"]))
        if engine.startswith("slm"):
            slm_isa = row.get("kernels", slm_isa)
label = {"slm": "slm", "slm-int8": "slm int8", "llama.cpp": "llama.cpp", "ik": "ik_llama.cpp -rtr 1"}
print(f"CPU: {cpu}, {threads} threads. slm kernels: {slm_isa}; {peer_isas.strip() or 'no peers'} "
      f"t/s: best of the rounds' means.\n")
slms = [e for e in engines if e.startswith("slm")]
peers = [e for e in engines if not e.startswith("slm")]
pairs = [(s, p) for s in slms for p in peers]
print("| file | test | " + " | ".join([label[e] + " t/s" for e in engines] +
                                     [label[s] + " vs " + label[p] for s, p in pairs]) + " |")
print("|---|---|" + "---:|" * (len(engines) + len(pairs)))
for mi, model in enumerate(models):
    tests = sorted({t for (m, t, _e) in best if m == mi}, key=lambda t: (not t.startswith("pp"), t))
    for test in tests:
        ts = {e: best.get((mi, test, e)) for e in engines}
        cells = [f"{ts[e]:.2f}" if ts[e] else "-" for e in engines]
        ratios = [f"{ts[s] / ts[p]:.2f}x" if ts[s] and ts[p] else "-" for s, p in pairs]
        print(f"| {os.path.basename(model)} | {test} | " + " | ".join(cells + ratios) + " |")
EOF
