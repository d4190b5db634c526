# Every method from the command line: the JSON names it and holds its raw grids ("tokens": null
# and a console note where it defines no token relevance); --contrast changes the map and is
# recorded; eval --method all with --deletion-insertion and --sanity writes its table, JSON and
# plot.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

make_image "$TMP/image.png" rgb 40 30
for method in chefer2021 rollout attention gradcam legrad grad-eclip; do
  "$BIN" explain --model "$MODEL" --method "$method" --out "$TMP/$method" --json "$TMP/$method.json" \
    "$TMP/image.png" "a dog" "a cat" >"$TMP/$method.txt"
done
"$BIN" explain --model "$MODEL" --method legrad --contrast "a cat" --param layer_index=-1 \
  --out "$TMP/contrast" --json "$TMP/contrast.json" "$TMP/image.png" "a dog" >/dev/null
"$PY" - "$TMP" <<'EOF2'
import json, sys
tmp = sys.argv[1]
def load(name):
    return json.load(open(f"{tmp}/{name}.json"))
for method, tokens in [("chefer2021", True), ("rollout", True), ("attention", True),
                       ("gradcam", False), ("legrad", False), ("grad-eclip", True)]:
    doc = load(method)
    assert doc["method"]["name"].startswith(method), doc["method"]
    prompts = doc["results"][0]["prompts"]
    assert all(len(p["grid"]) > 0 for p in prompts), method
    assert all((p["tokens"] is None) != tokens for p in prompts), (method, prompts[0]["tokens"])
    console = open(f"{tmp}/{method}.txt").read()
    assert ("gives no token relevance" in console) != tokens, console
rollout = load("rollout")
assert rollout["method"]["prompt_specific"] is False, rollout["method"]
grids = [p["grid"] for p in rollout["results"][0]["prompts"]]
assert grids[0] == grids[1], "rollout's map should not depend on the prompt"
contrast = load("contrast")
assert contrast["method"]["contrast"] == "a cat" and contrast["method"]["layer_index"] == -1
assert contrast["results"][0]["prompts"][0]["grid"] != load("legrad")["results"][0]["prompts"][0]["grid"]
EOF2

cat >"$TMP/manifest.json" <<'EOF2'
{"images": [{"image": "image.png", "prompts": ["a dog", "a cat", "a girl"],
             "objects": [{"text": "a dog", "box": [0, 0, 20, 15]}, {"text": "a cat", "box": [20, 15, 40, 30]}]}]}
EOF2
"$BIN" eval --quiet --model "$MODEL" --method all --deletion-insertion --sanity \
  --plot "$TMP/curves.png" --json "$TMP/eval.json" "$TMP/manifest.json" >"$TMP/eval.txt"
for method in chefer2021 rollout attention gradcam legrad grad-eclip; do
  grep -q "^$method " "$TMP/eval.txt" || fail "eval table lacks $method"
done
grep -q "Model randomisation" "$TMP/eval.txt" || fail "eval table lacks the sanity test"
[ -s "$TMP/curves.png" ] || fail "no plot"
"$PY" - "$TMP/eval.json" <<'EOF2'
import json, sys
report = json.load(open(sys.argv[1]))
assert [s["method"]["name"].split("-")[0] for s in report["settings"]] == \
    ["chefer2021", "rollout", "attention", "gradcam", "legrad", "grad"], report["settings"]
for setting in report["settings"]:
    assert setting["objects"] == 2, setting
    assert 0 <= setting["deletion_auc"] <= 1 and 0 <= setting["insertion_auc"] <= 1, setting
    assert len(setting["deletion_curve"]) == 51 and setting["ms_per_image"] > 0, setting
    assert len(setting["sanity"]) == 3, setting["sanity"]
EOF2

# A contrast in eval: each prompt explained against it, the contrast's own object not measured.
"$BIN" eval --quiet --model "$MODEL" --method chefer2021,legrad --contrast "a cat" \
  --json "$TMP/contrast_eval.json" "$TMP/manifest.json" >"$TMP/contrast_eval.txt"
grep -q 'Contrast: each prompt against "a cat"' "$TMP/contrast_eval.txt" || fail "no contrast line"
"$PY" - "$TMP/contrast_eval.json" <<'EOF2'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["contrast"] == "a cat", report["contrast"]
assert all(s["objects"] == 1 and s["method"]["contrast"] == "a cat" for s in report["settings"])
EOF2
