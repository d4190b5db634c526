# `clipxai explain` over a folder with nested subfolders of good and broken images, and over an
# @LIST: every good image explained with overlays mirroring the tree, every bad one reported with
# its reason, exit 2, one results.jsonl line per image, run.json as the run's header.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

mkdir -p "$TMP/photos/sub/deeper" "$TMP/photos/broken" "$TMP/photos/.thumbs"
make_image "$TMP/photos/a.png" rgb 40 30
make_image "$TMP/photos/D.PNG" grey 24 36
make_image "$TMP/photos/sub/b.jpg" rgb 50 20
make_image "$TMP/photos/sub/deeper/c.webp" rgba 33 33
make_image "$TMP/photos/.thumbs/hidden.png" rgb 8 8
echo "not an image" >"$TMP/photos/sub/notes.txt"
echo "just text" >"$TMP/photos/broken/text.jpg"
head -c $(($(stat -c %s "$TMP/photos/a.png") / 2)) "$TMP/photos/a.png" >"$TMP/photos/broken/truncated.png"
printf 'a dog\n\na cat\n' >"$TMP/prompts.txt"

status=0
"$BIN" explain --model "$MODEL" --out "$TMP/out" --json "$TMP/run.json" --texts-from "$TMP/prompts.txt" \
  "$TMP/photos" "a red ball" >"$TMP/stdout" 2>"$TMP/stderr" || status=$?
[ "$status" -eq 2 ] || fail "exit $status, expected 2; stderr: $(cat "$TMP/stderr")"
for bad in broken/text.jpg broken/truncated.png; do
  grep -q "^clipxai: .*$bad" "$TMP/stderr" || fail "stderr does not report $bad: $(cat "$TMP/stderr")"
done
grep -q "explained 4 of 6 images, 2 failed" "$TMP/stdout" || fail "summary: $(cat "$TMP/stdout")"

"$PY" - "$TMP" <<'EOF'
import json, os, sys
from PIL import Image

tmp = sys.argv[1]
def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

doc = json.load(open(f"{tmp}/run.json"))
header = json.load(open(f"{tmp}/out/run.json"))
check(header == {k: v for k, v in doc.items() if k not in ("results", "errors")}, header)

good = {"D.PNG": (24, 36), "a.png": (40, 30), "sub/b.jpg": (50, 20), "sub/deeper/c.webp": (33, 33)}
check([r["image"] for r in doc["results"]] == list(good), [r["image"] for r in doc["results"]])
check([e["image"] for e in doc["errors"]] == ["broken/text.jpg", "broken/truncated.png"],
      doc["errors"])
for error in doc["errors"]:
    check(error["category"] == "input" and error["image"] in error["message"], error)

slugs = ["a-red-ball", "a-dog", "a-cat"]
for result in doc["results"]:
    check([p["text"] for p in result["prompts"]] == ["a red ball", "a dog", "a cat"], result)
    stem = os.path.splitext(result["image"])[0]
    for prompt, slug in zip(result["prompts"], slugs):
        check(prompt["overlay"] == f"{tmp}/out/{stem}__{slug}.png", prompt["overlay"])
        with Image.open(prompt["overlay"]) as overlay:
            check(overlay.size == good[result["image"]], (prompt["overlay"], overlay.size))

lines = open(f"{tmp}/out/results.jsonl").read().splitlines()
check(len(lines) == 6, f"{len(lines)} lines in results.jsonl")
html = open(f"{tmp}/out/report.html").read()
check(html.count('class="result"') == 4 and html.count('class="error"') == 2, "report.html")
logged = sorted(json.loads(line)["image"] for line in lines)
check(logged == sorted(list(good) + ["broken/text.jpg", "broken/truncated.png"]), logged)
EOF

# @LIST: paths relative to the list's directory or absolute; comments and blank lines skipped.
printf '# two of them\nphotos/sub/b.jpg\n\n%s\n' "$TMP/photos/a.png" >"$TMP/list.txt"
"$BIN" explain --model "$MODEL" --out "$TMP/out_list" --json "$TMP/list.json" --quiet \
  "@$TMP/list.txt" "a dog" >/dev/null 2>"$TMP/stderr" || fail "@LIST run failed: $(cat "$TMP/stderr")"
[ ! -s "$TMP/stderr" ] || fail "--quiet printed: $(cat "$TMP/stderr")"
"$PY" - "$TMP" <<'EOF'
import json, sys
tmp = sys.argv[1]
doc = json.load(open(f"{tmp}/list.json"))
images = [r["image"] for r in doc["results"]]
if images != ["photos/sub/b.jpg", f"{tmp}/photos/a.png"] or doc["errors"]:
    sys.exit(f"FAIL: @LIST results {images}, errors {doc['errors']}")
EOF

mkdir -p "$TMP/empty"
printf '\n  \n' >"$TMP/no_prompts.txt"
explain=(explain --model "$MODEL" --out "$TMP/out_fail")
expect_failure 2 "--shard" "${explain[@]}" --shard 4/3 "$TMP/photos" "a dog"
expect_failure 2 "no images" "${explain[@]}" "$TMP/empty" "a dog"
expect_failure 2 "TEXT" "${explain[@]}" "$TMP/photos"
expect_failure 2 "no_prompts.txt" "${explain[@]}" --texts-from "$TMP/no_prompts.txt" "$TMP/photos"
expect_failure 2 "missing.txt" "${explain[@]}" "@$TMP/missing.txt" "a dog"
echo "batch folder: ok"
