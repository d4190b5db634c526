# Saved runs, manifests and logs from elsewhere: JSON nested without bound, numbers beyond
# double's range, malformed grids and a log that is a directory are input errors (exit 2, one
# line naming the file), never a crash, an internal error or a document written anyway.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

make_image "$TMP/scene.png" rgb 40 30
"$BIN" explain --model "$MODEL" --quiet --out "$TMP/run" --json "$TMP/run.json" "$TMP/scene.png" \
  "a dog" >/dev/null

# Documents derived from the real one: deeply nested, 1e400, and grids merge must not pass on.
"$PY" - "$TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
document = json.load(open(f"{tmp}/run.json"))
for depth in (10_000, 200_000):
    with open(f"{tmp}/nested{depth}.json", "w") as out:
        out.write("[" * depth + "]" * depth)
text = json.dumps(document)
logit = document["results"][0]["prompts"][0]["logit"]
with open(f"{tmp}/huge_number.json", "w") as out:
    out.write(text.replace(json.dumps(logit), "1e400", 1))
for name, grid in {"ragged": [[0.5, 0.25], [0.5]], "null": None, "text": "0.5"}.items():
    broken = json.loads(text)
    broken["results"][0]["prompts"][0]["grid"] = grid
    json.dump(broken, open(f"{tmp}/{name}_grid.json", "w"))
PY

while IFS='|' read -r message command; do
  # shellcheck disable=SC2086  # the words are the command's arguments
  expect_failure 2 "$message" $command
  [ ! -e "$TMP/merged.json" ] || fail "$command wrote a document"
done <<EOF
nested10000.json: not valid JSON (nested deeper than 100 levels)|merge $TMP/merged.json $TMP/nested10000.json
nested200000.json: not valid JSON (nested deeper than 100 levels)|merge $TMP/merged.json $TMP/nested200000.json
nested200000.json: not valid JSON (nested deeper than 100 levels)|check $TMP/run.json $TMP/nested200000.json
huge_number.json: not valid JSON ([json.exception.out_of_range.406] number overflow parsing '1e400')|check $TMP/run.json $TMP/huge_number.json
huge_number.json: not valid JSON|merge $TMP/merged.json $TMP/huge_number.json
ragged_grid.json: image $TMP/scene.png, prompt "a dog": "grid" rows must be non-empty arrays of equal length|merge $TMP/merged.json $TMP/ragged_grid.json
null_grid.json: image $TMP/scene.png, prompt "a dog": "grid" must be a non-empty array of rows|merge $TMP/merged.json $TMP/null_grid.json
text_grid.json: image $TMP/scene.png, prompt "a dog": "grid" must be a non-empty array of rows|merge $TMP/merged.json $TMP/text_grid.json
EOF

# A manifest with 1e400, and a results log with it met on --resume.
cat >"$TMP/manifest.json" <<'EOF'
{"images": [{"image": "scene.png", "prompts": ["a dog"], "objects": [{"text": "a dog", "box": [0, 0, 1e400, 15]}]}]}
EOF
expect_failure 2 "manifest.json: not valid JSON: [json.exception.out_of_range.406]" eval --quiet \
  --model "$MODEL" "$TMP/manifest.json"
sed -i 's/"logit":[^,]*/"logit":1e400/' "$TMP/run/results.jsonl"
cp "$TMP/run/results.jsonl" "$TMP/results.copy"
expect_failure 2 "results.jsonl line 1: not valid JSON" explain --model "$MODEL" --quiet \
  --out "$TMP/run" --resume "$TMP/scene.png" "a dog"
cmp -s "$TMP/run/results.jsonl" "$TMP/results.copy" || fail "--resume changed the damaged log"

# A run folder whose results.jsonl is a directory is not a run without results.
mkdir -p "$TMP/odd_run/results.jsonl"
cp "$TMP/run/run.json" "$TMP/odd_run/"
expect_failure 2 "odd_run/results.jsonl: is a directory" check "$TMP/run.json" "$TMP/odd_run"
expect_failure 2 "odd_run/results.jsonl: is a directory" merge "$TMP/merged.json" "$TMP/odd_run"
[ ! -e "$TMP/merged.json" ] || fail "merge wrote a document from a run without a log"
echo "hostile documents: ok"
