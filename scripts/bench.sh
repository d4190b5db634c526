#!/usr/bin/env bash
# Times whole runs of `clipxai explain` against the notebook algorithm (scripts/bench_notebook.py,
# Debian's PyTorch) on the same random-weight archives and photos, and the floor of one image.
#
#   bash scripts/bench.sh [--build DIR] [--scratch DIR] [--threads N] [--sizes "b32 b16"]
#                         [--cases "1x1 1x8 16x8"] [--rounds N]
#
# Archives (ViT-B/32 and ViT-B/16 sizes, OpenAI's fp16 layout, random weights) and 16 photos
# (640x480 JPEG) are written once into the scratch directory (default
# ${TMPDIR:-/tmp}/clipxai-bench, outside the repository) and reused. Cases: 1 image x 1 prompt,
# 1 x 8, 16 photos x 8. Each run is a whole process under /usr/bin/time (wall time, peak resident
# memory); both sides use N threads (default 2); clipxai explains the 16 photos in one process (a
# folder input) and reports where its time went (--timings) in its JSON. Every case runs both
# sides back to back, case after case, for N rounds (default 3): a noisy minute slows both sides,
# and the best time of each side is reported (peak memory: the largest). About 12 minutes on
# 2 cores (+2 minutes to write the data the first time). bench_floor (CMake option
# CLIPXAI_BENCHMARKS, built here) measures the floor: one plain vision forward at
# batch 1 + the 8 prompts' text forwards, against explain_image on the same inputs.
# The notebook side runs with the OpenMP wait policy that clipxai sets for itself (passive, see
# src/openmp_wait_policy.cpp), so the ratios measure the algorithms, not that setting.
# The tokenizer vocabulary is ../shared/clip/bpe_simple_vocab_16e6.txt.gz or $CLIPXAI_VOCAB.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build"
SCRATCH="${TMPDIR:-/tmp}/clipxai-bench"
THREADS=2
SIZES="b32 b16"
CASES="1x1 1x8 16x8"
ROUNDS=3
PYTHON=/usr/bin/python3  # Debian's, which has torch
PROMPTS=("an astronaut" "a photo of a cat" "a cup of coffee" "a rocket on the launch pad"
         "a red apple on a table" "a man riding a horse" "the moon in the night sky"
         "a colourful wheel")
PHOTOS=16

while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD="$(realpath -m "$2")"; shift 2 ;;
    --scratch) SCRATCH="$(realpath -m "$2")"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --sizes) SIZES="$2"; shift 2 ;;
    --cases) CASES="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

VOCAB="${CLIPXAI_VOCAB:-$ROOT/../shared/clip/bpe_simple_vocab_16e6.txt.gz}"
if [[ ! -f "$VOCAB" ]]; then
  echo "bench.sh: skipped: no tokenizer vocabulary at $VOCAB (set CLIPXAI_VOCAB);" \
       "the random archives have OpenAI's 49408-token vocabulary size" >&2
  exit 0
fi

echo "== building clipxai and bench_floor in $BUILD (if out of date)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCLIPXAI_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD" -j2 --target clipxai bench_floor >/dev/null
CLIPXAI="$BUILD/clipxai"

mkdir -p "$SCRATCH"
for size in $SIZES; do
  if [[ ! -f "$SCRATCH/vit_$size.pt" ]]; then
    echo "== writing $SCRATCH/vit_$size.pt (once)"
    "$PYTHON" "$ROOT/scripts/bench_data.py" archive "$size" "$SCRATCH/vit_$size.pt"
  fi
done
if [[ ! -f "$SCRATCH/photos/photo_$(printf %02d $((PHOTOS - 1))).jpg" ]]; then
  echo "== writing $PHOTOS photos into $SCRATCH/photos (once)"
  "$PYTHON" "$ROOT/scripts/bench_data.py" photos "$PHOTOS" "$SCRATCH/photos"
fi
FIRST_PHOTO="$SCRATCH/photos/photo_00.jpg"

# timed LOG COMMAND...: runs one whole process, prints "SECONDS PEAK_KIB".
timed() {
  local log="$1"
  shift
  local measure
  measure="$(mktemp)"
  if ! /usr/bin/time -f "%e %M" -o "$measure" "$@" >"$log" 2>&1; then
    echo "bench.sh: failed ($*), see $log" >&2
    tail -5 "$log" >&2
    rm -f "$measure"
    exit 1
  fi
  tail -1 "$measure"
  rm -f "$measure"
}

clipxai_run() {
  local out="$1" images="$2"
  shift 2
  timed "$out.log" "$CLIPXAI" explain --model "$MODEL" --vocab "$VOCAB" --threads "$THREADS" \
    --timings --quiet --out "$out" --json "$out/result.json" "$images" "$@"
}

notebook_run() {
  local out="$1" images="$2"
  shift 2
  timed "$out.log" env OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}" "$PYTHON" \
    "$ROOT/scripts/bench_notebook.py" --model "$MODEL" --vocab "$VOCAB" --threads "$THREADS" \
    --out "$out" --json "$out/result.json" "$images" "$@"
}

flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_bf16|amx_tile' |
  tr '\n' ' ')
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores" \
     "(${flags% }), $(free -g | awk '/Mem:/ {print $2}') GiB; $THREADS threads each side"
echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
RESULTS="$SCRATCH/results.tsv"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for size in $SIZES; do
    MODEL="$SCRATCH/vit_$size.pt"
    for case in $CASES; do
      case $case in
        1x1) images="$FIRST_PHOTO"; prompts=("${PROMPTS[0]}") ;;
        1x8) images="$FIRST_PHOTO"; prompts=("${PROMPTS[@]}") ;;
        16x8) images="$SCRATCH/photos"; prompts=("${PROMPTS[@]}") ;;
        *) echo "bench.sh: unknown case $case (1x1, 1x8 or 16x8)" >&2; exit 2 ;;
      esac
      out="$SCRATCH/out/$size-$case"
      rm -rf "$out" && mkdir -p "$out"
      echo "== round $round: $size $case"
      read -r ours_s ours_kib < <(clipxai_run "$out/clipxai" "$images" "${prompts[@]}")
      read -r theirs_s theirs_kib < <(notebook_run "$out/notebook" "$images" "${prompts[@]}")
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$case" "$ours_s" "$theirs_s" "$ours_kib" \
        "$theirs_kib" >>"$RESULTS"
    done
  done
done
for size in $SIZES; do
  echo "== $size floor"
  "$BUILD/bench_floor" --model "$SCRATCH/vit_$size.pt" --vocab "$VOCAB" --threads "$THREADS" \
    "$FIRST_PHOTO" "${PROMPTS[@]}" >"$SCRATCH/out/floor-$size.json"
done
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

"$PYTHON" - "$RESULTS" "$SCRATCH/out" $SIZES <<'EOF'
import glob, json, os, sys

import numpy as np

results, out, sizes = sys.argv[1], sys.argv[2], sys.argv[3:]
# (model, case) -> the least speed-up wanted; peak memory at most this share of the notebook's.
targets = {("b32", "1x1"): 3.5, ("b32", "1x8"): 5.0, ("b32", "16x8"): 8.0, ("b16", "16x8"): 10.0}
memory_share = 0.6


def prompts_by_key(directory):
    """(image file name, prompt text) -> the prompt's JSON object, from every report there."""
    found = {}
    for path in glob.glob(os.path.join(directory, "*.json")):
        with open(path) as f:
            report = json.load(f)
        for result in report.get("results", []) if isinstance(report, dict) else []:
            for prompt in result["prompts"]:
                found[(os.path.basename(result["image"]), prompt["text"])] = prompt
    return found


def disagreement(directory):
    """Largest differences between clipxai's and the notebook algorithm's numbers."""
    ours, theirs = prompts_by_key(directory + "/clipxai"), prompts_by_key(directory + "/notebook")
    if not ours or ours.keys() != theirs.keys():
        return "results do not match up"
    logit = grid = tokens = 0.0
    for key, prompt in ours.items():
        reference = theirs[key]
        logit = max(logit, abs(prompt["logit"] - reference["logit"]))
        a, b = np.array(prompt["grid"]), np.array(reference["grid"])
        grid = max(grid, float(np.abs(a - b).max() / np.abs(b).max()))
        a = np.array([t["relevance"] for t in prompt["tokens"]])
        b = np.array([t["relevance"] for t in reference["tokens"]])
        tokens = max(tokens, float(np.abs(a - b).max()))
    return f"logit {logit:.0e}, grid {grid:.0e}, tokens {tokens:.0e}"


runs = {}  # (model, case) -> [clipxai s, notebook s, clipxai KiB, notebook KiB], best of rounds
rounds = {}
for line in open(results):
    size, case, ours, theirs, ours_kib, theirs_kib = line.rstrip("\n").split("\t")
    best = runs.setdefault((size, case), [float("inf"), float("inf"), 0, 0])
    best[0], best[1] = min(best[0], float(ours)), min(best[1], float(theirs))
    best[2], best[3] = max(best[2], int(ours_kib)), max(best[3], int(theirs_kib))
    rounds[(size, case)] = rounds.get((size, case), 0) + 1

print()
print(f"{'model':5} {'case':4} {'clipxai s':>9} {'notebook s':>10} {'speed-up':>8} {'clipxai MiB':>11} "
      f"{'notebook MiB':>12} {'memory':>6}  largest difference")
for (size, case), (ours, theirs, ours_kib, theirs_kib) in runs.items():
    speedup = theirs / ours
    target = targets.get((size, case))
    verdict = "" if target is None else f"  (target >= {target}x: {'met' if speedup >= target else 'MISSED'})"
    share = ours_kib / theirs_kib
    memory = "" if share <= memory_share else f"  (memory over {memory_share} of the notebook's)"
    print(f"{size:5} {case:4} {ours:9.2f} {theirs:10.2f} {speedup:7.1f}x "
          f"{ours_kib / 1024:11.0f} {theirs_kib / 1024:12.0f} {share:6.2f}  "
          f"{disagreement(os.path.join(out, size + '-' + case)):37}{verdict}{memory}")
print(f"(best of {min(rounds.values())} rounds, each side; peak memory the largest of them)")
print()
print(f"{'model':5} {'floor s':>8} {'(vision':>8} {'+ text)':>8} {'explain s':>9} {'explain/floor':>13}"
      "   per image, 8 prompts, medians")
for size in sizes:
    with open(os.path.join(out, f"floor-{size}.json")) as f:
        floor = json.load(f)
    verdict = "met" if floor["explain_over_floor"] <= 1.3 else "MISSED"
    print(f"{size:5} {floor['floor']:8.3f} {floor['floor_vision']:8.3f} {floor['floor_text']:8.3f} "
          f"{floor['explain']:9.3f} {floor['explain_over_floor']:12.2f}x   (target <= 1.3x: {verdict})")
print()
print("where clipxai's time went in the last round (--timings, seconds; decode runs beside the model "
      "on workers):")
for size, case in runs:
    with open(os.path.join(out, f"{size}-{case}", "clipxai", "result.json")) as f:
        timings = json.load(f)["timings"]
    print(f"{size:5} {case:4} " + ", ".join(f"{k} {v:.3f}" for k, v in timings.items() if k != "images"))
EOF
