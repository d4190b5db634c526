# A manifest or image in a directory whose name is not UTF-8: every command that writes JSON
# writes it (bad bytes as U+FFFD) and exits 0 — `eval --json` once stopped with exit 4
# ("type_error.316") where `explain --json` on the same directory succeeded.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

odd="$TMP/$(printf 'caf\xe9')"
mkdir -p "$odd"
make_image "$odd/scene.png" rgb 48 40
cat >"$odd/manifest.json" <<'JSON'
{"images": [{"image": "scene.png", "prompts": ["a dog", "a cat"],
             "objects": [{"text": "a dog", "box": [0, 0, 24, 20]}]}]}
JSON

for command in "eval --model $MODEL --quiet --json $TMP/eval.json $odd/manifest.json" \
               "explain --model $MODEL --out $TMP/out --json $TMP/explain.json $odd/scene.png a-dog"; do
  set +e
  # shellcheck disable=SC2086  # the words are the command's arguments
  "$BIN" $command >"$TMP/stdout" 2>"$TMP/stderr"
  code=$?
  set -e
  [ "$code" -eq 0 ] || fail "clipxai $command exited $code: $(cat "$TMP/stderr")"
done
"$PY" - "$TMP/eval.json" "$TMP/explain.json" <<'PY' || fail "the JSON documents do not name the files"
import json, sys
evaluation = json.load(open(sys.argv[1], encoding="utf-8"))
explained = json.load(open(sys.argv[2], encoding="utf-8"))
assert evaluation["images"] == 1 and evaluation["failed_images"] == 0, evaluation
assert "caf\ufffd" in evaluation["manifest"], evaluation["manifest"]
assert "caf\ufffd" in explained["results"][0]["image"], explained["results"][0]["image"]
PY
echo "odd directory names: ok"
