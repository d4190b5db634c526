# One model in every checkpoint layout (scripts/write_checkpoint_layouts.py wrote them from the
# same weights): `clipxai info` names each format, and `clipxai explain` gives the same logits
# (to 1e-5) and the same maps (to 1e-5 relative) from every one (a TorchScript archive re-packed
# with deflated records too), with every method that maps
# the text too, and the same token ids from the embedded merge list and from vocab.json +
# merges.txt. The files given as the folder and as the weights file are both read.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

LAYOUTS="$SRC/tests/data/layouts"
make_image "$TMP/scene.png" rgb 80 56

# name|format|--model|extra options
CASES="openai_fp16|openai-torchscript|$LAYOUTS/openai_fp16.pt|
openai_fp16_deflated|openai-torchscript|$LAYOUTS/openai_fp16_deflated.pt|
hf|hf-transformers|$LAYOUTS/hf|
hf_fp16|hf-transformers|$LAYOUTS/hf_fp16|
hf_sharded|hf-transformers|$LAYOUTS/hf_sharded|
hf_bin|hf-transformers|$LAYOUTS/hf_bin/|
open_clip|open-clip|$LAYOUTS/open_clip|
open_clip_file|open-clip|$LAYOUTS/open_clip/open_clip_model.safetensors|
open_clip_bin|open-clip|$LAYOUTS/open_clip_bin|--vocab $LAYOUTS/hf/vocab.json
state_dict|state-dict|$LAYOUTS/state_dict.safetensors|--model-config $LAYOUTS/state_dict.config.json --vocab $LAYOUTS/hf"

echo "$CASES" | while IFS='|' read -r name format model extra; do
  # shellcheck disable=SC2086  # extra holds whole options
  "$BIN" info --json "$model" $extra >"$TMP/$name.info.json" || fail "info $name"
  for method in chefer2021 grad-eclip; do
    # shellcheck disable=SC2086
    "$BIN" explain --model "$model" $extra --method "$method" --json "$TMP/$name.$method.json" \
      --out "$TMP/out-$name" "$TMP/scene.png" "a dog" "a photo of a cat" "a girl" >/dev/null ||
      fail "explain $name $method"
  done
  echo "$name $format" >>"$TMP/names"
done

"$PY" - "$TMP" <<'EOF'
import json, os, sys

def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

tmp = sys.argv[1]
cases = [line.split() for line in open(os.path.join(tmp, "names"))]
load = lambda name: json.load(open(os.path.join(tmp, name)))
reference_info = load("openai_fp16.info.json")
facts = ["resolution", "patch_size", "grid", "vision_width", "vision_layers", "vision_heads",
         "text_width", "text_layers", "text_heads", "embed_dim", "context_length", "vocab_size",
         "activation", "image_mean", "image_std"]
for name, format_name in cases:
    info = load(f"{name}.info.json")
    check(info["format"] == format_name, f"{name}: format {info['format']}, expected {format_name}")
    for fact in facts:
        check(info[fact] == reference_info[fact], f"{name}: {fact} {info[fact]} != {reference_info[fact]}")
    check(info["tokenizer"], f"{name}: no tokenizer")
    check(set(info["fact_sources"]) >= set(facts), f"{name}: fact_sources lacks some facts")
check(load("hf.info.json")["fact_sources"]["vision_heads"] ==
      "config.json: vision_config.num_attention_heads", load("hf.info.json")["fact_sources"])
check(load("open_clip.info.json")["fact_sources"]["image_mean"] ==
      "open_clip_config.json: preprocess_cfg.mean", load("open_clip.info.json")["fact_sources"])
check(load("state_dict.info.json")["fact_sources"]["text_heads"].endswith(
      'state_dict.config.json: text_heads'), load("state_dict.info.json")["fact_sources"])

def relative(a, b):
    scale = max(max(abs(x) for x in a), 1e-12)
    return max(abs(x - y) for x, y in zip(a, b)) / scale

flat = lambda grid: [v for row in grid for v in row]
for method in ("chefer2021", "grad-eclip"):
    reference = load(f"openai_fp16.{method}.json")["results"][0]["prompts"]
    for name, _ in cases:
        prompts = load(f"{name}.{method}.json")["results"][0]["prompts"]
        check(len(prompts) == len(reference), f"{name}: {len(prompts)} prompts")
        for got, want in zip(prompts, reference):
            where = f"{name} {method} {want['text']!r}"
            check([t["token"] for t in got["tokens"]] == [t["token"] for t in want["tokens"]],
                  f"{where}: tokens differ")
            check(abs(got["logit"] - want["logit"]) <= 1e-5, f"{where}: logit {got['logit']} != {want['logit']}")
            check(relative(flat(want["grid"]), flat(got["grid"])) <= 1e-5, f"{where}: maps differ")
            check(relative([t["relevance"] for t in want["tokens"]],
                           [t["relevance"] for t in got["tokens"]]) <= 1e-5, f"{where}: token relevances differ")
EOF
echo "checkpoint_layouts: ok"
