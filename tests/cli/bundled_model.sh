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

"$PY" - "$SRC/examples/manifest.json" <<'EOF'
import json, os, sys

def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

doc = json.load(open("demo.json"))
check(doc["model"]["name"] == "clipxai-emoji-vit", doc["model"])
check(doc["model"]["tokenizer"].startswith("vocabulary embedded in"), doc["model"]["tokenizer"])
prompts = doc["results"][0]["prompts"]
check([p["text"] for p in prompts] == ["girl", "boy", "desktop computer"], prompts)
for prompt in prompts:
    check(os.path.isfile(prompt["overlay"]), prompt["overlay"])
check(len(open("console.txt").read().splitlines()) == 3, "three console lines")
# What the README shows of the model: "desktop computer" peaks on its emoji ("girl" and "boy" do
# not: a measured weakness of the model on this trio, which the README and model card state).
manifest = json.load(open(sys.argv[1]))
boxes = {o["text"]: o["box"] for o in manifest["images"][0]["objects"]}
x, y = next(p["peak"] for p in prompts if p["text"] == "desktop computer")
x0, y0, x1, y1 = boxes["desktop computer"]
check(x0 <= x < x1 and y0 <= y < y1, f"desktop computer: peak {[x, y]} outside {boxes['desktop computer']}")

evaluation = json.load(open("eval.json"))
objects = sum(len(image["objects"]) for image in manifest["images"])
check(evaluation["failed_images"] == 0, evaluation["errors"])
check(evaluation["settings"][0]["objects"] == objects, evaluation["settings"][0]["objects"])
EOF
echo "bundled_model: ok"
