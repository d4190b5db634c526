# Help, version, the launcher, `clipxai info`, and the default model lookup.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

"$BIN" --help >"$TMP/help.txt"
for text in explain tokenize info Examples: "Exit codes"; do
  grep -qF -- "$text" "$TMP/help.txt" || fail "--help lacks '$text'"
done
"$BIN" explain --help >"$TMP/explain_help.txt"
for option in --model --vocab --out --json --start-layer --start-layer-text --crop --alpha \
  --colormap --save-raw --threads --device Examples:; do
  grep -qF -- "$option" "$TMP/explain_help.txt" || fail "explain --help lacks $option"
done
"$BIN" tokenize --help | grep -qF -- "--vocab" || fail "tokenize --help"
[ "$("$BIN" --version)" = "clipxai $(sed -n 's/^project(clipxai VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")" ] ||
  fail "--version prints $("$BIN" --version)"

# The launcher alone, without clipxai-bin beside it: exit 4 (internal), naming what it looked for.
mkdir -p "$TMP/lonely"
cp "$BIN" "$TMP/lonely/clipxai"
status=0
"$TMP/lonely/clipxai" --version 2>"$TMP/lonely.err" || status=$?
[ "$status" -eq 4 ] || fail "the launcher alone exited $status, expected 4"
grep -qF "clipxai: cannot start $(cd "$TMP/lonely" && pwd -P)/clipxai-bin" "$TMP/lonely.err" ||
  fail "the launcher alone says: $(cat "$TMP/lonely.err")"

"$BIN" info "$MODEL" >"$TMP/info.txt"
for field in model: name: image: vision: text: embedding: activation: rollout: tokenizer:; do
  grep -q "^$field" "$TMP/info.txt" || fail "info lacks $field"
done
grep -qF "$MODEL" "$TMP/info.txt" || fail "info does not name the file"

"$BIN" info --json "$MODEL" >"$TMP/info.json"
"$PY" - "$TMP/info.json" "$MODEL" <<'PYEOF'
import json, sys
info = json.load(open(sys.argv[1]))
assert info["path"] == sys.argv[2], info["path"]
for key in ["name", "resolution", "patch_size", "grid", "vision_width", "vision_layers",
            "vision_heads", "text_width", "text_layers", "text_heads", "embed_dim",
            "context_length", "vocab_size", "activation"]:
    assert isinstance(info[key], (int, str)) and info[key] not in ("", 0), key
assert info["grid"] * info["patch_size"] == info["resolution"], info
# The fixture declares no rollout depth: the notebook's, the last layer of each tower.
assert info["relevance_start_layer"] == info["vision_layers"] - 1, info
assert info["relevance_start_layer_text"] == info["text_layers"] - 1, info
assert info["tokenizer"], "the fixture embeds its vocabulary"
PYEOF

# Without a model argument: $CLIPXAI_MODEL, else the bundled default model.
CLIPXAI_MODEL="$MODEL" "$BIN" info --json >"$TMP/default.json"
cmp -s "$TMP/info.json" "$TMP/default.json" || fail "CLIPXAI_MODEL not used as the default"
echo "basics: ok"
