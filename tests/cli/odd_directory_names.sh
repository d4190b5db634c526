# File and directory names that are not UTF-8 (Latin-1 "caf\xe9"): every command that writes JSON
# writes it and exits 0 — `eval --json` once stopped with exit 4 ("type_error.316") — and the
# names keep their identity, written "caf\\xe9" (output.h's path_text): the overlays they name
# exist, the report links to them, and --resume finds the images done instead of redoing them.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

odd="$TMP/photos/$(printf 'caf\xe9')"
mkdir -p "$odd"
make_image "$odd/scene.png" rgb 48 40
make_image "$odd/$(printf 'na\xefve').png" rgb 40 48
cat >"$odd/manifest.json" <<'JSON'
{"images": [{"image": "scene.png", "prompts": ["a dog", "a cat"],
             "objects": [{"text": "a dog", "box": [0, 0, 24, 20]}]}]}
JSON

for command in "eval --model $MODEL --quiet --json $TMP/eval.json $odd/manifest.json" \
               "explain --model $MODEL --out $TMP/out --json $TMP/explain.json $odd/scene.png a-dog" \
               "explain --model $MODEL --quiet --out $TMP/folder --json $TMP/folder.json $TMP/photos a-dog" \
               "explain --model $MODEL --quiet --out $TMP/folder --resume --json $TMP/resumed.json $TMP/photos a-dog"; do
  set +e
  # shellcheck disable=SC2086  # the words are the command's arguments
  "$BIN" $command >"$TMP/stdout" 2>"$TMP/stderr"
  code=$?
  set -e
  [ "$code" -eq 0 ] || fail "clipxai $command exited $code: $(cat "$TMP/stderr")"
done
"$PY" - "$TMP" <<'PY' || fail "the JSON documents do not name the files losslessly"
import json, os, re, sys, urllib.parse
tmp = sys.argv[1]
def load(name):
    return json.load(open(f"{tmp}/{name}", encoding="utf-8"))
evaluation, explained, folder = load("eval.json"), load("explain.json"), load("folder.json")
assert evaluation["images"] == 1 and evaluation["failed_images"] == 0, evaluation
assert evaluation["manifest"] == f"{tmp}/photos/caf\\xe9/manifest.json", evaluation["manifest"]
assert explained["results"][0]["image"] == f"{tmp}/photos/caf\\xe9/scene.png", explained["results"]
images = [result["image"] for result in folder["results"]]
assert images == ["caf\\xe9/na\\xefve.png", "caf\\xe9/scene.png"], images
for result in folder["results"]:
    overlay = result["prompts"][0]["overlay"]
    assert os.path.isfile(overlay), overlay
# The resumed run redid nothing: one line per image, and the same document.
lines = open(f"{tmp}/folder/results.jsonl", encoding="utf-8").read().splitlines()
assert len(lines) == 2, lines
assert load("resumed.json") == folder
page = open(f"{tmp}/folder/report.html", encoding="utf-8").read()
links = re.findall(r'<img class="overlay" loading="lazy" src="([^"]+)"', page)
assert len(links) == 2, links
for link in links:
    assert os.path.isfile(f"{tmp}/folder/" + urllib.parse.unquote(link)), link
PY
echo "odd directory names: ok"
