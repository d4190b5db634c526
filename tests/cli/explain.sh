# `clipxai explain` end to end on the tiny fixture model: files, console lines, JSON schema.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

make_image "$TMP/scene.png" rgb 96 64
LONG_PROMPT="$(printf 'a photo of a dog %.0s' $(seq 1 20))"

"$BIN" explain --model "$MODEL" --out "$TMP/out" --json "$TMP/result.json" --save-raw \
  "$TMP/scene.png" "a dog" "a photo of a cat" "A dog!" "$LONG_PROMPT" >"$TMP/console.txt"

# Checks one run's JSON document, files and console output.
# check_run JSON CONSOLE CROP START_LAYER START_LAYER_TEXT ALPHA
check_run() {
  "$PY" - "$@" <<'EOF'
import json, os, sys
import numpy as np
from PIL import Image

document_path, console_path, crop_mode, start_layer, start_layer_text, alpha = sys.argv[1:]
with open(document_path) as f:
    doc = json.load(f)
console = open(console_path).read().splitlines()

def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

check(sorted(doc) == ["clipxai_version", "errors", "method", "model", "results"], sorted(doc))
model = doc["model"]
for key in ["path", "name", "resolution", "patch_size", "grid", "vision_width", "vision_layers",
            "vision_heads", "text_width", "text_layers", "text_heads", "embed_dim",
            "context_length", "vocab_size", "activation", "tokenizer"]:
    check(key in model, f"model lacks {key}")
check(model["grid"] * model["patch_size"] == model["resolution"], model)
layers, text_layers = model["vision_layers"], model["text_layers"]
check(doc["method"] == {"name": "chefer2021-gradient-rollout", "crop": crop_mode,
                        "start_layer": int(start_layer) % layers,
                        "start_layer_text": int(start_layer_text) % text_layers}, doc["method"])
check(doc["errors"] == [], doc["errors"])
check(len(doc["results"]) == 1, "one result")

result = doc["results"][0]
check(sorted(result) == ["crop", "height", "image", "prompts", "width"], sorted(result))
check((result["width"], result["height"]) == (96, 64), result)
crop = result["crop"]
# The model (32x32 input) sees the centred 64x64 square, or a 96x96 square letterboxing the image
# (up to the rounding of the resized height).
expected = (16, 0, 64, 64) if crop_mode == "center" else (0, -16, 96, 96)
actual = (crop["x"], crop["y"], crop["width"], crop["height"])
check(max(abs(a - e) for a, e in zip(actual, expected)) <= 2, f"crop {actual}")
shown = slice(16, 80) if crop_mode == "center" else slice(0, 96)

image = np.asarray(Image.open(result["image"]).convert("RGB")).astype(int)
prompts = result["prompts"]
check([p["text"] for p in prompts][:3] == ["a dog", "a photo of a cat", "A dog!"], prompts)
check(abs(sum(p["probability"] for p in prompts) - 1) < 1e-5, "probabilities sum to 1")
check(len(console) == len(prompts), console)
scales = [p["logit"] / p["cosine"] for p in prompts]
check(max(scales) - min(scales) < 1e-3 * max(scales), f"logit = scale * cosine: {scales}")
overlays = [p["overlay"] for p in prompts]
check(len(set(overlays)) == len(overlays), f"overlay names collide: {overlays}")
for i, (prompt, line) in enumerate(zip(prompts, console)):
    check(sorted(prompt) == ["cosine", "grid", "logit", "overlay", "peak", "probability", "raw",
                             "text", "tokens", "truncated"], sorted(prompt))
    check(-1 <= prompt["cosine"] <= 1, prompt["cosine"])
    grid = np.array(prompt["grid"], dtype=np.float32)
    check(grid.shape == (model["grid"], model["grid"]), grid.shape)
    x, y = prompt["peak"]
    inside = max(crop["x"], 0) - 0.5 <= x < min(crop["x"] + crop["width"], 96) and \
             max(crop["y"], 0) - 0.5 <= y < min(crop["y"] + crop["height"], 64)
    check(inside, f"peak {prompt['peak']} outside the crop {crop}")
    tokens = prompt["tokens"]
    check(tokens and all(sorted(t) == ["relevance", "token"] for t in tokens), tokens)
    check(abs(sum(t["relevance"] for t in tokens) - 1) < 1e-4, "token relevances sum to 1")
    check(prompt["truncated"] == (i == 3), f"prompt {i} truncated: {prompt['truncated']}")
    check(("[truncated" in line) == prompt["truncated"], line)
    for part in ["p=", "logit=", f"peak=({x},{y})", prompt["overlay"]]:
        check(part in line, f"console line lacks {part}: {line}")

    overlay = Image.open(prompt["overlay"])
    check(overlay.format == "PNG" and overlay.size == (96, 64), (overlay.format, overlay.size))
    overlay = np.asarray(overlay.convert("RGB")).astype(int)
    if crop_mode == "center":  # left of the crop: dimmed image, no heat
        check(np.abs(overlay[:, :16] - np.round(image[:, :16] * 0.35)).max() <= 1, "dimmed")
    if float(alpha) == 0:  # where the model looked: the image itself
        check(np.array_equal(overlay[:, shown], image[:, shown]), "alpha 0 keeps the image")
    else:
        check(np.abs(overlay[:, shown] - image[:, shown]).max() > 20, "heat map visible")

    if prompt["raw"] is not None:
        raw = np.load(prompt["raw"])
        check(raw.dtype == np.float32 and np.array_equal(raw, grid), "raw .npy equals the grid")

out_dir = os.path.dirname(overlays[0])
check(not [n for n in os.listdir(out_dir) if ".tmp" in n], "temporary files left")
EOF
}

check_run "$TMP/result.json" "$TMP/console.txt" center -1 -1 0.5
for name in scene__a-dog.png scene__a-dog-2.png scene__a-photo-of-a-cat.npy; do
  [ -f "$TMP/out/$name" ] || fail "missing $TMP/out/$name"
done

# --json - puts the document on stdout and the console lines on stderr; pad crop, all layers,
# alpha 0, another colour map; --out defaults to ./clipxai-out.
mkdir -p "$TMP/cwd"
(cd "$TMP/cwd" && "$BIN" explain --model "$MODEL" --json - --crop pad --start-layer 0 \
  --start-layer-text 0 --alpha 0 --colormap viridis --threads 1 \
  "$TMP/scene.png" "a dog" "a photo of a cat" "A dog!" >"$TMP/stdout.json" 2>"$TMP/stderr.txt")
(cd "$TMP/cwd" && check_run "$TMP/stdout.json" "$TMP/stderr.txt" pad 0 0 0)
[ -f "$TMP/cwd/clipxai-out/scene__a-dog.png" ] || fail "default --out directory not used"

# A JSON file written over an existing one is replaced whole.
"$BIN" explain --model "$MODEL" --out "$TMP/out" --json "$TMP/result.json" --alpha 1 \
  --colormap TURBO "$TMP/scene.png" "a dog" "a photo of a cat" "A dog!" >"$TMP/console.txt"
check_run "$TMP/result.json" "$TMP/console.txt" center -1 -1 1

# --phrases: the prompts given, then the sentence, then its noun phrases, each with its span in
# the sentence (code points); the other prompts have none. Each gets its overlay.
"$BIN" explain --model "$MODEL" --out "$TMP/phrases" --json "$TMP/phrases.json" \
  --phrases "a café dog and the red car" "$TMP/scene.png" "a cat" >/dev/null
"$PY" - "$TMP/phrases.json" <<'EOF' || fail "--phrases: $(cat "$TMP/phrases.json" | head -c 400)"
import json, os, sys
prompts = json.load(open(sys.argv[1]))["results"][0]["prompts"]
assert [(p["text"], p.get("span")) for p in prompts] == [
    ("a cat", None), ("a café dog and the red car", None), ("a café dog", [0, 10]),
    ("the red car", [15, 26])], [(p["text"], p.get("span")) for p in prompts]
sentence = prompts[1]["text"]
for prompt in prompts[2:]:
    start, end = prompt["span"]
    assert sentence[start:end] == prompt["text"]
assert all(os.path.isfile(p["overlay"]) for p in prompts)
EOF
expect_failure 2 "--phrases" explain --model "$MODEL" --out "$TMP/phrases" --phrases " " "$TMP/scene.png"
echo "explain: ok"
