# Every bad input gives exit 2 (usage or input) or 3 (model or vocabulary) and one line naming
# the culprit — never a crash.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

make_image "$TMP/good.png" rgb 40 30
: >"$TMP/empty.png"
head -c $(($(stat -c %s "$TMP/good.png") / 2)) "$TMP/good.png" >"$TMP/truncated.png"
echo "just some text, not an image" >"$TMP/notes.png"
head -c 4096 /dev/urandom >"$TMP/garbage.pt"
head -c $(($(stat -c %s "$MODEL") / 2)) "$MODEL" >"$TMP/truncated.pt"
mkdir -p "$TMP/model_dir"
echo "not gzip" >"$TMP/vocab.txt.gz"
: >"$TMP/a_file"

explain=(explain --model "$MODEL" --out "$TMP/out")

# Images.
expect_failure 2 missing.png "${explain[@]}" "$TMP/missing.png" "a dog"
expect_failure 2 empty.png "${explain[@]}" "$TMP/empty.png" "a dog"
expect_failure 2 truncated.png "${explain[@]}" "$TMP/truncated.png" "a dog"
expect_failure 2 notes.png "${explain[@]}" "$TMP/notes.png" "a dog"

# Models and vocabularies.
expect_failure 3 garbage.pt explain --model "$TMP/garbage.pt" "$TMP/good.png" "a dog"
expect_failure 3 truncated.pt explain --model "$TMP/truncated.pt" "$TMP/good.png" "a dog"
expect_failure 3 missing.pt explain --model "$TMP/missing.pt" "$TMP/good.png" "a dog"
expect_failure 3 model_dir explain --model "$TMP/model_dir" "$TMP/good.png" "a dog"
CLIPXAI_MODEL="$TMP/missing.pt" expect_failure 3 missing.pt info
expect_failure 3 vocab.txt.gz "${explain[@]}" --vocab "$TMP/vocab.txt.gz" "$TMP/good.png" "a dog"
expect_failure 3 garbage.pt info "$TMP/garbage.pt"
expect_failure 3 missing.txt.gz tokenize --vocab "$TMP/missing.txt.gz" -- "a dog"
# Checkpoints in the other layouts (tests/checkpoint_formats_test.cpp has every kind of damage).
LAYOUTS="$SRC/tests/data/layouts"
cp -r "$LAYOUTS/hf" "$TMP/hf_truncated"
head -c 20000 "$LAYOUTS/hf/model.safetensors" >"$TMP/hf_truncated/model.safetensors"
expect_failure 3 "hf_truncated/model.safetensors: entry" explain --model "$TMP/hf_truncated" \
  "$TMP/good.png" "a dog"
cp -r "$LAYOUTS/hf" "$TMP/hf_without_config"
rm "$TMP/hf_without_config/config.json"
expect_failure 3 "a folder without config.json" info "$TMP/hf_without_config"
expect_failure 3 "--model-config" info "$LAYOUTS/open_clip" --model-config "$TMP/a_file"
head -c 5 "$LAYOUTS/state_dict.safetensors" >"$TMP/short.safetensors"
expect_failure 3 "truncated safetensors file" explain --model "$TMP/short.safetensors" \
  "$TMP/good.png" "a dog"

# Standard output that cannot be written: a full disk, or closed.
status=0
"$BIN" tokenize --model "$MODEL" -- "a dog" >/dev/full 2>"$TMP/stderr" || status=$?
[ "$status" -eq 2 ] || fail "tokenize onto /dev/full exited $status"
grep -qF "cannot write to standard output" "$TMP/stderr" || fail "tokenize onto /dev/full: $(cat "$TMP/stderr")"
status=0
"$BIN" explain --model "$MODEL" --out "$TMP/out" --json - "$TMP/good.png" "a dog" >/dev/full \
  2>"$TMP/stderr" || status=$?
[ "$status" -eq 2 ] || fail "explain --json - onto /dev/full exited $status"
status=0
"$BIN" tokenize --model "$MODEL" -- "a dog" >&- 2>"$TMP/stderr" || status=$?
[ "$status" -eq 2 ] || fail "tokenize onto a closed stdout exited $status"
expect_failure 2 "--alpha: 'nan' is not a number (expected 0 to 1)" "${explain[@]}" --alpha nan \
  "$TMP/good.png" "a dog"

# Prompts.
expect_failure 2 'prompt ""' "${explain[@]}" "$TMP/good.png" "a dog" ""
expect_failure 2 'prompt "   "' "${explain[@]}" "$TMP/good.png" "   "
expect_failure 2 UTF-8 "${explain[@]}" "$TMP/good.png" $'a \xff\xfe dog'
expect_failure 2 UTF-8 tokenize --model "$MODEL" -- $'\xc3'

# Options.
expect_failure 2 --alpha "${explain[@]}" --alpha 1.5 "$TMP/good.png" "a dog"
expect_failure 2 --alpha "${explain[@]}" --alpha much "$TMP/good.png" "a dog"
expect_failure 2 --crop "${explain[@]}" --crop diagonal "$TMP/good.png" "a dog"
expect_failure 2 --colormap "${explain[@]}" --colormap sepia "$TMP/good.png" "a dog"
expect_failure 2 --threads "${explain[@]}" --threads -1 "$TMP/good.png" "a dog"
expect_failure 2 --start-layer "${explain[@]}" --start-layer -2 "$TMP/good.png" "a dog"
expect_failure 2 --start-layer-text "${explain[@]}" --start-layer-text x "$TMP/good.png" "a dog"
expect_failure 2 "layer" "${explain[@]}" --start-layer 99 "$TMP/good.png" "a dog"
expect_failure 2 "layer" "${explain[@]}" --start-layer-text 99 "$TMP/good.png" "a dog"
expect_failure 2 --device "${explain[@]}" --device tpu "$TMP/good.png" "a dog"

# Methods and their options.
expect_failure 2 --method "${explain[@]}" --method gradient-shap "$TMP/good.png" "a dog"
expect_failure 2 "attention has no parameter start_layer" "${explain[@]}" --method attention \
  --start-layer 1 "$TMP/good.png" "a dog"
expect_failure 2 "rollout uses attention only" "${explain[@]}" --method rollout --contrast "a cat" \
  "$TMP/good.png" "a dog"
expect_failure 2 "attention" "${explain[@]}" --method attention --contrast "a cat" "$TMP/good.png" \
  "a dog"
expect_failure 2 "target=logit" "${explain[@]}" --method gradcam --contrast "a cat" "$TMP/good.png" \
  "a dog" "a girl"
expect_failure 2 "one prompt" "${explain[@]}" --method gradcam "$TMP/good.png" "a dog"
expect_failure 2 "NAME=VALUE" "${explain[@]}" --method legrad --param layer_index "$TMP/good.png" \
  "a dog"
expect_failure 2 "layer_index 7" "${explain[@]}" --method legrad --param layer_index=7 \
  "$TMP/good.png" "a dog"
expect_failure 2 "grad-eclip has no parameter target" "${explain[@]}" --method grad-eclip \
  --param target=logit "$TMP/good.png" "a dog"
expect_failure 2 "--contrast" "${explain[@]}" --contrast "" "$TMP/good.png" "a dog"
if ! "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  expect_failure 2 "--device cuda" "${explain[@]}" --device cuda "$TMP/good.png" "a dog"
fi
expect_failure 2 a_file explain --model "$MODEL" --out "$TMP/a_file" "$TMP/good.png" "a dog"
expect_failure 2 no_such_dir "${explain[@]}" --json "$TMP/no_such_dir/r.json" "$TMP/good.png" "a"
expect_failure 2 --bogus "${explain[@]}" --bogus "$TMP/good.png" "a dog"
expect_failure 2 TEXT "${explain[@]}" "$TMP/good.png"
expect_failure 2 "no command"
expect_failure 2 frobnicate frobnicate

# A benchmark whose image fails still measures the others, and says so in its exit code, as a
# batch run does.
cat >"$TMP/manifest.json" <<'EOF2'
{"images": [
  {"image": "good.png", "prompts": ["a dog", "a cat"], "objects": [{"text": "a dog", "box": [0, 0, 20, 15]}]},
  {"image": "good.png", "prompts": ["a dog", "a cat"],
   "objects": [{"text": "a cat", "box": [0, 0, 20, 15], "mask": "missing_mask.png"}]}]}
EOF2
expect_failure 2 missing_mask.png eval --quiet --model "$MODEL" --json "$TMP/eval.json" "$TMP/manifest.json"
"$PY" - "$TMP/eval.json" <<'EOF2'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["failed_images"] == 1 and report["settings"][0]["objects"] == 1, report
EOF2

# Eval's method options.
eval_run=(eval --quiet --model "$MODEL" "$TMP/manifest.json")
expect_failure 2 "unknown method" "${eval_run[@]}" --method chefer2021,shap
expect_failure 2 "rollout uses attention only" "${eval_run[@]}" --method all --contrast "a cat"
expect_failure 2 "--param target" "${eval_run[@]}" --method legrad --param target=logit
expect_failure 2 "--start-layer" "${eval_run[@]}" --method legrad --start-layer 0
expect_failure 2 "--start-layer: 'x' is not a whole number (expected -1 to 1048576)" \
  "${eval_run[@]}" --start-layer 0,x
expect_failure 2 "--max-pixels: '1.5' is not a whole number" "${eval_run[@]}" --max-pixels 1.5
expect_failure 2 "--deletion-insertion" "${eval_run[@]}" --plot "$TMP/curves.png"

# Failed runs leave no partial or temporary files behind.
[ -z "$(find "$TMP/out" -name '*.tmp*' 2>/dev/null)" ] || fail "temporary files left in $TMP/out"
echo "bad inputs: ok"
