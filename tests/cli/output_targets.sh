# Where outputs land: --json and merge write through devices, FIFOs and symbolic links instead of
# replacing them; an output that is one of the run's inputs or its own files is refused before
# any work, leaving it intact; a report that cannot be written does not cost the --json document;
# a file name too long for an overlay's name is shortened, not an error.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

make_image "$TMP/photo.png" rgb 40 30
explain=(explain --model "$MODEL" --quiet)

# Devices are written through: as root, a replaced /dev/null would become a regular file.
"$BIN" "${explain[@]}" --out "$TMP/out" --json /dev/null "$TMP/photo.png" "a dog" >/dev/null ||
  fail "--json /dev/null failed"
[ -c /dev/null ] || fail "/dev/null is no longer a character device"
expect_failure 2 "cannot write /dev/full: No space left on device" "${explain[@]}" \
  --out "$TMP/out" --json /dev/full "$TMP/photo.png" "a dog"

# A FIFO is written through to its reader and stays a FIFO.
mkfifo "$TMP/pipe.json"
cat "$TMP/pipe.json" >"$TMP/from_pipe.json" &
reader=$!
timeout 120 "$BIN" "${explain[@]}" --out "$TMP/out" --json "$TMP/pipe.json" "$TMP/photo.png" \
  "a dog" >/dev/null || fail "--json FIFO failed"
wait "$reader"
[ -p "$TMP/pipe.json" ] || fail "the FIFO was replaced"
"$PY" -c "import json,sys; assert json.load(open(sys.argv[1]))['results']" "$TMP/from_pipe.json" ||
  fail "the FIFO's reader got no document"

# A symbolic link is followed, dangling or not, and stays a link.
mkdir -p "$TMP/docs"
echo old >"$TMP/docs/target.json"
ln -s docs/target.json "$TMP/link.json"
ln -s docs/new.json "$TMP/dangling.json"
for link in link dangling; do
  "$BIN" "${explain[@]}" --out "$TMP/out" --json "$TMP/$link.json" "$TMP/photo.png" "a dog" \
    >/dev/null || fail "--json through the $link link failed"
  [ -L "$TMP/$link.json" ] || fail "the $link link was replaced by a file"
done
for target in target new; do
  "$PY" -c "import json,sys; assert json.load(open(sys.argv[1]))['results']" \
    "$TMP/docs/$target.json" || fail "docs/$target.json did not receive the document"
done

# Outputs that are inputs or the run's own files: refused, nothing replaced.
"$BIN" "${explain[@]}" --out "$TMP/run" "$TMP/photo.png" "a dog" >/dev/null
cp "$TMP/photo.png" "$TMP/photo.copy"
cp "$TMP/run/results.jsonl" "$TMP/results.copy"
echo "a dog" >"$TMP/prompts.txt"
ln -s photo.png "$TMP/photo_link.png"
while IFS='|' read -r target message; do
  expect_failure 2 "$message" "${explain[@]}" --out "$TMP/run" --resume --texts-from \
    "$TMP/prompts.txt" --json "$target" "$TMP/photo.png"
done <<EOF
$TMP/photo.png|--json $TMP/photo.png: is an input image ($TMP/photo.png)
$TMP/photo_link.png|is an input image
$TMP/run/results.jsonl|is the results log
$TMP/run/../run/run.json|is the run header
$TMP/run/report.html|is the run's report
$TMP/run/photo__a-dog.png|is an output of the run
$TMP/prompts.txt|is the prompt file
$MODEL|is the model
EOF
cmp -s "$TMP/photo.png" "$TMP/photo.copy" || fail "the input image was changed"
cmp -s "$TMP/run/results.jsonl" "$TMP/results.copy" || fail "the results log was changed"
hf="$SRC/tests/data/layouts/hf"
expect_failure 2 "is inside the model" explain --quiet --model "$hf" --out "$TMP/run" \
  --json "$hf/config.json" "$TMP/photo.png" "a dog"

"$BIN" "${explain[@]}" --out "$TMP/run2" --json "$TMP/run2.json" "$TMP/photo.png" "a dog" >/dev/null
cp "$TMP/run2.json" "$TMP/run2.copy"
expect_failure 2 "merge $TMP/run2.json: is an input run" merge "$TMP/run2.json" "$TMP/run2.json"
expect_failure 2 "is a run's results log" merge "$TMP/run/results.jsonl" "$TMP/run"
expect_failure 2 "--json $TMP/run2.json: is an input run" check --json "$TMP/run2.json" \
  "$TMP/run2.json" "$TMP/run"
cmp -s "$TMP/run2.json" "$TMP/run2.copy" || fail "the run document was changed"
"$BIN" merge /dev/null "$TMP/run" >/dev/null || fail "merge to /dev/null failed"
[ -c /dev/null ] || fail "merge replaced /dev/null"

cp "$TMP/photo.png" "$TMP/scene.png"
cat >"$TMP/manifest.json" <<'EOF'
{"images": [{"image": "scene.png", "prompts": ["a dog", "a cat"],
             "objects": [{"text": "a dog", "box": [0, 0, 20, 15]}]}]}
EOF
cp "$TMP/manifest.json" "$TMP/manifest.copy"
eval_run=(eval --quiet --model "$MODEL")
expect_failure 2 "--json $TMP/manifest.json: is the manifest" "${eval_run[@]}" --json \
  "$TMP/manifest.json" "$TMP/manifest.json"
expect_failure 2 "--json $TMP/scene.png: is an image of the manifest" "${eval_run[@]}" --json \
  "$TMP/scene.png" "$TMP/manifest.json"
expect_failure 2 "--plot $TMP/e.json: is the --json report" "${eval_run[@]}" --deletion-insertion \
  --json "$TMP/e.json" --plot "$TMP/e.json" "$TMP/manifest.json"
cmp -s "$TMP/manifest.json" "$TMP/manifest.copy" || fail "the manifest was changed"
cmp -s "$TMP/scene.png" "$TMP/photo.png" || fail "the manifest's image was changed"

# A report that cannot be written: the run fails, naming it, and the document is still written.
mkdir -p "$TMP/blocked/report.html"
expect_failure 2 "report.html: is a directory" "${explain[@]}" --out "$TMP/blocked" \
  --json "$TMP/blocked.json" "$TMP/photo.png" "a dog"
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['results']) == 1, d" \
  "$TMP/blocked.json" || fail "no --json document after the report failed"

# A 250-character file name: its overlay's name would pass 255 bytes with the prompt's slug.
long_name="$(printf 'p%.0s' $(seq 1 246)).png"
mkdir -p "$TMP/long"
cp "$TMP/photo.png" "$TMP/long/$long_name"
"$BIN" "${explain[@]}" --out "$TMP/long_out" --json "$TMP/long.json" "$TMP/long" \
  "a photo of a very long prompt that fills the whole sixty-four character slug limit" \
  >/dev/null || fail "a 250-character image name failed"
"$PY" - "$TMP/long.json" "$long_name" <<'PY' || fail "the shortened overlay"
import json, os, sys
document = json.load(open(sys.argv[1]))
result = document["results"][0]
assert result["image"] == sys.argv[2], result["image"]
overlay = result["prompts"][0]["overlay"]
name = os.path.basename(overlay)
assert os.path.isfile(overlay) and len(name.encode()) <= 255, overlay
assert name.startswith("p" * 100) and "~" in name, name
PY
echo "output targets: ok"
