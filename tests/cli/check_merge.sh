# `clipxai check` and `clipxai merge` on runs written by `clipxai explain`.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

make_image "$TMP/one.png" rgb 48 40
make_image "$TMP/two.png" rgba 40 56
explain() {  # explain OUT_NAME IMAGE [OPTIONS...]
  local name=$1 image=$2
  shift 2
  "$BIN" explain --model "$MODEL" --out "$TMP/$name" --json "$TMP/$name.json" "$@" \
    "$image" "a dog" "a photo of a cat" >/dev/null
}
explain baseline "$TMP/one.png"
explain rerun "$TMP/one.png" --threads 1
explain all_layers "$TMP/one.png" --start-layer 0 --start-layer-text 0
explain other_image "$TMP/two.png"

"$BIN" check "$TMP/baseline.json" "$TMP/rerun.json" >"$TMP/same.txt" ||
  fail "a rerun differs from its baseline: $(cat "$TMP/same.txt")"

status=0
"$BIN" check --json "$TMP/differ.json" "$TMP/baseline.json" "$TMP/all_layers.json" \
  >"$TMP/differ.txt" || status=$?
[ "$status" -eq 1 ] || fail "check against other method settings exited $status, expected 1"
grep -qF "start_layer" "$TMP/differ.txt" || fail "check does not name the differing setting"
"$PY" - "$TMP/differ.json" <<'PYEOF'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["summary"]["pass"] is False, report["summary"]
assert report["header_differences"], "method settings differ"
PYEOF

status=0
"$BIN" check "$TMP/baseline.json" "$TMP/other_image.json" >"$TMP/missing.txt" || status=$?
[ "$status" -eq 1 ] || fail "check with missing pairs exited $status, expected 1"

: >"$TMP/empty.json"
expect_failure 2 empty.json check "$TMP/baseline.json" "$TMP/empty.json"
expect_failure 2 --min-pearson check --min-pearson 2 "$TMP/baseline.json" "$TMP/rerun.json"

# Two single-image runs merge into one document holding both images, in path order.
"$BIN" merge "$TMP/merged.json" "$TMP/other_image.json" "$TMP/baseline.json" >/dev/null
"$PY" - "$TMP/merged.json" "$TMP/one.png" "$TMP/two.png" <<'PYEOF'
import json, sys
merged = json.load(open(sys.argv[1]))
assert [r["image"] for r in merged["results"]] == sys.argv[2:], merged["results"]
assert merged["errors"] == []
PYEOF
expect_failure 2 all_layers.json merge "$TMP/bad_merge.json" "$TMP/baseline.json" "$TMP/all_layers.json"
echo "check and merge: ok"
