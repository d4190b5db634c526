# `clipxai explain --resume` after `kill -9` in the middle of a folder run: no torn file is left,
# the resumed run redoes nothing already complete, and its document equals an uninterrupted run's
# (same order, every image exactly once).
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

for i in $(seq -w 1 40); do
  mkdir -p "$TMP/photos/part$((10#$i % 3))"
  make_image "$TMP/photos/part$((10#$i % 3))/img$i.png" rgb $((30 + 10#$i)) 40
done
echo "not an image" >"$TMP/photos/part1/broken.png"
# --image-batch 1: each image's numbers alone, so the document can equal the uninterrupted run's
# byte for byte (images sharing a window share batched matrix products, whose last digits depend
# on the window's other images: README, Performance).
run=(explain --model "$MODEL" --threads 1 --image-batch 1 --save-raw "$TMP/photos" "a dog" "a cat")

status=0
"$BIN" "${run[@]}" --out "$TMP/full" --json "$TMP/full.json" >/dev/null 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "uninterrupted run exited $status, expected 2"

# Kill -9 once a few images are logged.
"$BIN" "${run[@]}" --out "$TMP/killed" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ "$(wc -l 2>/dev/null <"$TMP/killed/results.jsonl" || echo 0)" -ge 5 ] && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || fail "the run finished before it could be killed"
wait "$pid" 2>/dev/null || true
# A run killed while appending leaves a torn last line; make sure there is one.
printf '{"image": "part0/img03.png", "prompts": [{"te' >>"$TMP/killed/results.jsonl"

# Every file present is complete: every line but the torn one parses, every PNG decodes, every
# .npy loads.
"$PY" - "$TMP/killed" <<'EOF'
import glob, json, sys
import numpy as np
from PIL import Image

out = sys.argv[1]
lines = open(f"{out}/results.jsonl").read().split("\n")
for line in lines[:-1]:
    json.loads(line)
for path in glob.glob(f"{out}/**/*.png", recursive=True):
    with Image.open(path) as image:
        image.load()
for path in glob.glob(f"{out}/**/*.npy", recursive=True):
    np.load(path)
EOF
complete_before=$("$PY" - "$TMP/killed/results.jsonl" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().split("\n")[:-1]
print(len({json.loads(line)["image"] for line in lines if "prompts" in json.loads(line)}))
EOF
)

status=0
"$BIN" "${run[@]}" --out "$TMP/killed" --resume --json "$TMP/resumed.json" >"$TMP/stdout" 2>"$TMP/stderr" ||
  status=$?
[ "$status" -eq 2 ] || fail "resumed run exited $status, expected 2: $(cat "$TMP/stderr")"
grep -q "($complete_before already done)" "$TMP/stdout" ||
  fail "expected $complete_before images skipped: $(cat "$TMP/stdout")"

"$PY" - "$TMP" <<'EOF'
import json, sys
tmp = sys.argv[1]
def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

full = json.load(open(f"{tmp}/full.json"))
resumed = json.load(open(f"{tmp}/resumed.json"))
images = [r["image"] for r in resumed["results"]]
check(len(images) == 40 and len(set(images)) == 40, f"{len(images)} results")
check([e["image"] for e in resumed["errors"]] == ["part1/broken.png"], resumed["errors"])
# Equal to the uninterrupted run's document up to the output directory's name.
check(json.dumps(resumed).replace(f"{tmp}/killed/", f"{tmp}/full/") == json.dumps(full),
      "the resumed document differs from the uninterrupted run's")
# The log holds each image once, except the failed one retried, and no torn line.
text = open(f"{tmp}/killed/results.jsonl").read()
check(text.endswith("\n"), "results.jsonl does not end with a newline")
logged = [json.loads(line)["image"] for line in text.splitlines()]
check(sorted(set(logged)) == sorted(images + ["part1/broken.png"]), "images missing from the log")
results = [image for image in logged if image != "part1/broken.png"]
check(len(results) == len(set(results)), "an image was explained twice")
EOF

# Resuming with other settings is refused instead of mixing two jobs in one log.
expect_failure 2 "--resume" "${run[@]}" --out "$TMP/killed" --resume --start-layer 0
echo "batch resume: ok"
