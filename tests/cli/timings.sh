# `clipxai explain --timings`: the phase table on standard error, the "timings" object in the JSON,
# and overlays drawn in parallel that are byte-identical to ones drawn on one thread.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

mkdir -p "$TMP/photos"
make_image "$TMP/photos/a.png" rgb 96 64
make_image "$TMP/photos/b.jpg" rgb 50 70
make_image "$TMP/photos/c.png" grey 64 64
PROMPTS=("a dog" "a cat" "a photo of a bird" "tree")

"$BIN" explain --model "$MODEL" --quiet --timings --threads 2 --out "$TMP/two" --save-raw \
  --json "$TMP/two.json" "$TMP/photos" "${PROMPTS[@]}" 2>"$TMP/stderr.txt"
"$BIN" explain --model "$MODEL" --quiet --threads 1 --out "$TMP/one" --save-raw \
  --json "$TMP/one.json" "$TMP/photos" "${PROMPTS[@]}"
# With --json - the document alone is on standard output, the table on standard error.
"$BIN" explain --model "$MODEL" --timings --out "$TMP/stdout" --json - "$TMP/photos/a.png" \
  "${PROMPTS[@]}" >"$TMP/stdout.json" 2>"$TMP/stdout-stderr.txt"

"$PY" - "$TMP" <<'EOF'
import json, os, re, sys

tmp = sys.argv[1]
phases = ["load", "decode", "vision", "text", "relevance", "rendering", "writing"]

def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

def check_timings(timings, images):
    check(sorted(timings) == sorted(phases + ["total", "images"]), sorted(timings))
    check(timings["images"] == images, timings)
    for phase in phases:
        check(isinstance(timings[phase], float) and timings[phase] > 0, f"{phase}: {timings}")
    # Every phase but decode runs on the main thread, one at a time, within the total.
    main_thread = sum(timings[p] for p in phases if p != "decode")
    check(main_thread <= timings["total"] * 1.001, f"phases {main_thread} > total {timings}")

two = json.load(open(f"{tmp}/two.json"))
check_timings(two["timings"], 3)
one = json.load(open(f"{tmp}/one.json"))
check("timings" not in one, "no timings without --timings")

# Same results and byte-identical overlays and raw maps whatever the thread count.
def outputs(doc, root):
    files = {}
    for result in doc["results"]:
        for prompt in result["prompts"]:
            for key in ("overlay", "raw"):
                with open(prompt[key], "rb") as f:
                    files[os.path.relpath(prompt[key], root)] = f.read()
    return files
two_files, one_files = outputs(two, f"{tmp}/two"), outputs(one, f"{tmp}/one")
check(len(two_files) == 3 * 4 * 2, sorted(two_files))
check(two_files.keys() == one_files.keys(), (sorted(two_files), sorted(one_files)))
for name in two_files:
    check(two_files[name] == one_files[name], f"{name} differs between 1 and 2 threads")
peaks = lambda doc: [[p["peak"] for p in r["prompts"]] for r in doc["results"]]
check(peaks(two) == peaks(one), "peaks differ between 1 and 2 threads")

stderr = open(f"{tmp}/stderr.txt").read()
check(stderr.startswith("timings (seconds, 3 images):\n"), stderr)
for phase in phases + ["total"]:
    check(re.search(rf"^  {phase} +\d+\.\d{{3}}", stderr, re.M), f"no {phase} line in\n{stderr}")

single = json.load(open(f"{tmp}/stdout.json"))
check_timings(single["timings"], 1)
check(len(single["results"]) == 1, single["results"])
check("timings (seconds, 1 image):" in open(f"{tmp}/stdout-stderr.txt").read(), "stderr table")
EOF
# The timings change from run to run; check compares explanations, not them.
"$BIN" check "$TMP/one.json" "$TMP/two.json" >"$TMP/check.txt" || fail "check: $(cat "$TMP/check.txt")"
echo "timings: ok"
