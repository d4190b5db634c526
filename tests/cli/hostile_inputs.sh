# Inputs meant to exhaust or hang: a decompression bomb (a 20000x20000 PNG of real pixels, a few
# hundred KB) in a folder fails alone, from its header, in little memory, and the other images,
# the document and the report are still written; FIFOs and devices named as an image, inside a
# folder, in an @LIST, as --texts-from, --vocab, a manifest, a model or a run document fail at
# once instead of blocking or reading forever (helpers.bash's expect_failure fails a hang).
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

mkdir -p "$TMP/photos"
make_image "$TMP/photos/good.png" rgb 40 30
"$PY" - "$TMP/photos/bomb.png" <<'EOF'
import struct, sys, zlib
width = height = 20000
def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
compressor = zlib.compressobj(9)
row = b"\x00" + bytes(range(256)) * (width // 256) + bytes(width % 256)
data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
with open(sys.argv[1], "wb") as out:
    out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
              + chunk(b"IDAT", data) + chunk(b"IEND", b""))
EOF

status=0
/usr/bin/time -f "%M" -o "$TMP/peak_kb" "$BIN" explain --model "$MODEL" --out "$TMP/out" \
  --json "$TMP/run.json" "$TMP/photos" "a dog" >"$TMP/stdout" 2>"$TMP/stderr" || status=$?
[ "$status" -eq 2 ] || fail "a folder with a bomb exited $status, expected 2: $(cat "$TMP/stderr")"
grep -qF "bomb.png' is 20000x20000 pixels, over the limit of 250000000 (--max-pixels)" \
  "$TMP/stderr" || fail "the bomb's error: $(cat "$TMP/stderr")"
[ -f "$TMP/out/good__a-dog.png" ] || fail "the good image was not explained: $(ls "$TMP/out")"
[ -f "$TMP/out/report.html" ] || fail "no report.html"
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert [r['image'] for r in d['results']] \
== ['good.png'], d['results']; assert len(d['errors']) == 1, d['errors']" "$TMP/run.json" ||
  fail "the document"
peak_mb=$(($(tail -n 1 "$TMP/peak_kb") / 1024))
[ "$peak_mb" -lt 1000 ] || fail "peak memory ${peak_mb} MB with a bomb in the folder"
# --max-pixels lowers the limit.
expect_failure 2 "is 40x30 pixels, over the limit of 1000" explain --model "$MODEL" \
  --out "$TMP/out2" --max-pixels 1000 "$TMP/photos/good.png" "a dog"

# FIFOs and devices: each must fail within seconds.
mkfifo "$TMP/fifo.png" "$TMP/fifo.txt" "$TMP/fifo.json"
mkdir -p "$TMP/with_fifo"
cp "$TMP/photos/good.png" "$TMP/with_fifo/"
mkfifo "$TMP/with_fifo/pipe.png"
echo "$TMP/fifo.png" >"$TMP/list.txt"
explain=(explain --model "$MODEL" --out "$TMP/out3")
expect_failure 2 "fifo.png' is not a regular file" "${explain[@]}" "$TMP/fifo.png" "a dog"
expect_failure 2 "pipe.png' is not a regular file" "${explain[@]}" --quiet "$TMP/with_fifo" "a dog"
expect_failure 2 "fifo.png' is not a regular file" "${explain[@]}" "@$TMP/list.txt" "a dog"
expect_failure 2 "image list: is not a regular file" "${explain[@]}" "@$TMP/fifo.txt" "a dog"
expect_failure 2 "fifo.txt: cannot read the" "${explain[@]}" --texts-from "$TMP/fifo.txt" \
  "$TMP/photos/good.png"
expect_failure 3 "fifo.txt: cannot read the vocabulary (from --vocab): is not a regular file" \
  "${explain[@]}" --vocab "$TMP/fifo.txt" "$TMP/photos/good.png" "a dog"
expect_failure 3 "/dev/zero: cannot read the vocabulary (from --vocab): is not a regular file" \
  tokenize --vocab /dev/zero -- "a dog"
expect_failure 3 "fifo.json: is not a regular file" explain --model "$TMP/fifo.json" \
  "$TMP/photos/good.png" "a dog"
expect_failure 2 "fifo.json: cannot read the manifest: is not a regular file" eval --model "$MODEL" \
  "$TMP/fifo.json"
expect_failure 2 "fifo.json: cannot read the run document: is not a regular file" check \
  "$TMP/fifo.json" "$TMP/fifo.json"
echo "hostile_inputs: ok"
