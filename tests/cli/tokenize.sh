# `clipxai tokenize`: the model's vocabulary and context; OpenAI's vocabulary on the shared cases,
# as its .txt.gz merge list and as the vocab.json + merges.txt transformers' CLIPTokenizer reads
# (made from the same list by scripts/write_checkpoint_layouts.py), both giving the reference ids.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

LONG_TEXT="$(printf 'a photo of a dog %.0s' $(seq 1 20))"
"$BIN" tokenize --model "$MODEL" --json -- "a dog" "-a photo of a cat-" "$LONG_TEXT" >"$TMP/tiny.json"
"$BIN" info --json "$MODEL" >"$TMP/info.json"
"$PY" - "$TMP/tiny.json" "$TMP/info.json" <<'PYEOF'
import json, sys
texts = json.load(open(sys.argv[1]))
model = json.load(open(sys.argv[2]))
context, vocab = model["context_length"], model["vocab_size"]
sot, eot = vocab - 2, vocab - 1
assert [t["text"] for t in texts][:2] == ["a dog", "-a photo of a cat-"], texts
for t in texts:
    assert sorted(t) == ["ids", "text", "tokens", "truncated"], sorted(t)
    ids = t["ids"]
    assert len(ids) == context and ids[0] == sot, ids
    end = ids.index(eot)
    assert all(i == 0 for i in ids[end + 1:]), ids
    assert all(0 < i < sot for i in ids[1:end]), ids
assert texts[0]["tokens"] == ["a", "dog"] and len(texts[0]["ids"][1:texts[0]["ids"].index(eot)]) == 2
assert not texts[0]["truncated"] and not texts[1]["truncated"]
assert texts[2]["truncated"] and texts[2]["ids"][-1] == eot, texts[2]
PYEOF

"$BIN" tokenize --model "$MODEL" -- "a dog" "$LONG_TEXT" >"$TMP/plain.txt"
grep -qF '"a dog"' "$TMP/plain.txt" || fail "plain output lacks the text"
grep -qF 'tokens (2): a | dog' "$TMP/plain.txt" || fail "plain output lacks the tokens"
grep -qF '[truncated' "$TMP/plain.txt" || fail "plain output does not note truncation"

SHARED="$SRC/../shared/clip"
if [ ! -f "$SHARED/tokenizer_cases.json" ] || [ ! -f "$SHARED/bpe_simple_vocab_16e6.txt.gz" ]; then
  echo "tokenize: OpenAI cases skipped ($SHARED absent)"
  exit 0
fi
"$PY" "$SRC/scripts/write_checkpoint_layouts.py" --vocab-from "$SHARED/bpe_simple_vocab_16e6.txt.gz" \
  --out "$TMP/hf_vocabulary"
"$PY" - "$BIN" "$SHARED" "$TMP/hf_vocabulary" <<'PYEOF'
import json, subprocess, sys
binary, shared, hf_vocabulary = sys.argv[1:]
cases = json.load(open(f"{shared}/tokenizer_cases.json"))["cases"]
for vocabulary in (f"{shared}/bpe_simple_vocab_16e6.txt.gz", f"{hf_vocabulary}/vocab.json",
                   hf_vocabulary):
    run = subprocess.run([binary, "tokenize", "--vocab", vocabulary, "--json", "--"] +
                         [c["text"] for c in cases], capture_output=True, text=True, check=True)
    results = json.loads(run.stdout)
    assert len(results) == len(cases)
    wrong = [c["text"] for c, r in zip(cases, results)
             if r["ids"] != c["tokens77"] or r["truncated"] == c["fits_in_context"]]
    assert not wrong, f"{vocabulary}: {len(wrong)} of {len(cases)} differ, e.g. {wrong[:3]}"
    print(f"tokenize: {len(cases)} OpenAI cases match with {vocabulary}")
PYEOF
echo "tokenize: ok"
