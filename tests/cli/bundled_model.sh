# The bundled model out of the box: `clipxai explain` on the example scene with no --model finds
# models/clipxai-emoji-vit.pt next to the binary's tree, and `clipxai eval` runs on examples/.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

unset CLIPXAI_MODEL CLIPXAI_VOCAB
cd "$TMP"
"$BIN" explain --json demo.json "$SRC/examples/girl_boy_desktop.png" girl boy "desktop computer" \
  >console.txt
"$BIN" eval --quiet --json eval.json "$SRC/examples/manifest.json" >eval.txt
grep -q "the model's default" eval.txt || fail "eval does not say it measured the model's default"

"$PY" - "$SRC/examples/manifest.json" <<'EOF'
import json, os, sys

def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

doc = json.load(open("demo.json"))
check(doc["model"]["name"] == "clipxai-emoji-vit", doc["model"])
check(doc["model"]["tokenizer"].startswith("vocabulary embedded in"), doc["model"]["tokenizer"])
# Without --start-layer the rollout depth is the one the archive declares, as its card records.
card = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "..", "models", "clipxai-emoji-vit.json")))
declared = card["architecture"]["relevance_start_layer"]
check(doc["model"]["relevance_start_layer"] == declared, doc["model"])
check(doc["method"]["start_layer"] == declared, doc["method"])
prompts = doc["results"][0]["prompts"]
check([p["text"] for p in prompts] == ["girl", "boy", "desktop computer"], prompts)
for prompt in prompts:
    check(os.path.isfile(prompt["overlay"]), prompt["overlay"])
check(len(open("console.txt").read().splitlines()) == 3, "three console lines")
# What the README shows of the model: each prompt's peak on its own emoji (issue 3). This pins
# the shipped model's answer on this one image; it is not a rate (on 200 renderings of the trio
# all three are right in only 4.5%, as the README says).
manifest = json.load(open(sys.argv[1]))
boxes = {o["text"]: o["box"] for o in manifest["images"][0]["objects"]}
for prompt in prompts:
    x, y = prompt["peak"]
    x0, y0, x1, y1 = boxes[prompt["text"]]
    check(x0 <= x < x1 and y0 <= y < y1, f"{prompt['text']}: peak {[x, y]} outside {boxes[prompt['text']]}")

evaluation = json.load(open("eval.json"))
objects = sum(len(image["objects"]) for image in manifest["images"])
check(evaluation["failed_images"] == 0, evaluation["errors"])
check(evaluation["settings"][0]["objects"] == objects, evaluation["settings"][0]["objects"])
EOF
echo "bundled_model: ok"
