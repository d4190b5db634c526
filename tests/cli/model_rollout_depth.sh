# A model's declared rollout depth end to end: scripts/model_config.py writes
# "relevance_start_layer" into a copy of the fixture archive; `clipxai info`, `explain` and `eval`
# then use it when no --start-layer is given, and --start-layer still overrides it.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

"$PY" "$SRC/scripts/model_config.py" "$MODEL" --set relevance_start_layer=1 --out "$TMP/declared.pt" \
  >/dev/null
make_image "$TMP/scene.png" rgb 64 64

"$BIN" info "$MODEL" | grep -qF "rollout:     vision last layer (2)" || fail "the fixture declares no depth"
"$BIN" info "$TMP/declared.pt" | grep -qF "rollout:     vision layers 1-2" ||
  fail "info does not show the declared depth"

"$BIN" explain --model "$TMP/declared.pt" --json "$TMP/declared.json" --out "$TMP/out" \
  "$TMP/scene.png" "a dog" >/dev/null
"$BIN" explain --model "$MODEL" --start-layer 1 --json "$TMP/chosen.json" --out "$TMP/out" \
  "$TMP/scene.png" "a dog" >/dev/null
"$BIN" explain --model "$TMP/declared.pt" --start-layer -1 --json "$TMP/overridden.json" \
  --out "$TMP/out" "$TMP/scene.png" "a dog" >/dev/null
cat >"$TMP/manifest.json" <<'MANIFEST'
{"images": [{"image": "scene.png", "prompts": ["a dog", "a cat"],
             "objects": [{"text": "a dog", "box": [0, 0, 32, 32]}]}]}
MANIFEST
"$BIN" eval --quiet --model "$TMP/declared.pt" --json "$TMP/eval.json" "$TMP/manifest.json" \
  >"$TMP/eval.txt"

"$PY" - "$TMP" <<'EOF'
import json, os, sys

def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

tmp = sys.argv[1]
load = lambda name: json.load(open(os.path.join(tmp, name)))
declared, chosen, overridden = load("declared.json"), load("chosen.json"), load("overridden.json")
check(declared["model"]["relevance_start_layer"] == 1, declared["model"])
check(declared["method"]["start_layer"] == 1, declared["method"])
check(declared["method"]["start_layer_text"] == declared["model"]["text_layers"] - 1, declared["method"])
# The declared default gives what asking for layer 1 gives on the plain archive.
grid = lambda doc: doc["results"][0]["prompts"][0]["grid"]
check(grid(declared) == grid(chosen), "declared depth differs from --start-layer 1")
check(overridden["method"]["start_layer"] == 2, overridden["method"])
check(grid(overridden) != grid(declared), "--start-layer -1 did not override the declared depth")
evaluation = load("eval.json")
check([s["method"]["start_layer"] for s in evaluation["settings"]] == [1], evaluation["settings"])
check(evaluation["settings"][0]["label"] == "layers 1-2, the model's default", evaluation["settings"][0])
EOF
grep -qF "layers 1-2, the model's default" "$TMP/eval.txt" || fail "eval table lacks the setting"
echo "model_rollout_depth: ok"
