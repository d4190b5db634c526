# `clipxai explain --shard K/N`: shards 1/N..N/N explain every image exactly once, and
# `clipxai merge` of their --out directories equals the unsharded run's document; a set of
# shards with one missing or repeated is refused.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

for i in $(seq 1 14); do
  mkdir -p "$TMP/photos/set$((i % 2))"
  make_image "$TMP/photos/set$((i % 2))/photo$i.jpg" rgb $((20 + i)) 24
done
echo "broken" >"$TMP/photos/set0/broken.jpg"
run=(explain --model "$MODEL" --threads 1 --quiet "$TMP/photos" "a dog" "a cat")

status=0
"$BIN" "${run[@]}" --out "$TMP/all" --json "$TMP/all.json" >/dev/null 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "unsharded run exited $status, expected 2"
for k in 1 2 3; do
  status=0
  "$BIN" "${run[@]}" --shard "$k/3" --out "$TMP/shard$k" >/dev/null 2>&1 || status=$?
  # Only the shard holding the broken image fails.
  [ "$status" -eq 0 ] || [ "$status" -eq 2 ] || fail "shard $k/3 exited $status"
done
"$BIN" merge "$TMP/merged.json" "$TMP/shard1" "$TMP/shard2" "$TMP/shard3" >/dev/null ||
  fail "merge failed"

"$PY" - "$TMP" <<'EOF'
import json, re, sys
tmp = sys.argv[1]
def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")

everything = sorted(r["image"] for r in json.load(open(f"{tmp}/all.json"))["results"]) + \
    ["set0/broken.jpg"]
logged = []
for k in (1, 2, 3):
    logged += [json.loads(line)["image"] for line in open(f"{tmp}/shard{k}/results.jsonl")]
check(sorted(logged) == sorted(everything), f"shards logged {sorted(logged)}")
check(len(everything) == 15, everything)

merged = json.dumps(json.load(open(f"{tmp}/merged.json")))
unsharded = json.dumps(json.load(open(f"{tmp}/all.json")))
check(re.sub(f"{tmp}/shard[123]/", f"{tmp}/all/", merged) == unsharded,
      "the merged shards differ from the unsharded run")
EOF

# Shards given wrongly: each refused, naming what is missing or repeated.
while IFS='|' read -r message inputs; do
  # shellcheck disable=SC2086  # the words are the inputs
  expect_failure 2 "$message" merge "$TMP/partial.json" $inputs
done <<EOF2
the job has 3 shards and 2 were given: missing 3/3|$TMP/shard1 $TMP/shard2
shard 2/3 is given twice: $TMP/shard2 and $TMP/shard2|$TMP/shard1 $TMP/shard2 $TMP/shard2 $TMP/shard3
$TMP/all is an unsharded run, $TMP/shard1 a shard (1/3)|$TMP/shard1 $TMP/all
EOF2
[ ! -e "$TMP/partial.json" ] || fail "merge wrote a document from a partial set of shards"
echo "batch shards: ok"
