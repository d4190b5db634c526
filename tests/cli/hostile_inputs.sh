# Inputs meant to exhaust or hang: a decompression bomb (a 20000x20000 PNG of real pixels, a few
# hundred KB) in a folder fails alone, from its header, in little memory, and the other images,
# the document and the report are still written; FIFOs and devices named as an image, inside a
# folder, in an @LIST, as --texts-from, --vocab, a manifest, a model or a run document fail at
# once instead of blocking or reading forever (helpers.bash's expect_failure fails a hang). Damaged
# images (a JPEG scan cut short, a PNG with a bad CRC, a cut TIFF) fail with one line of clipxai's
# own and nothing from the decoders; names with control characters are printed escaped; paths the
# system cannot reach (too long, a link loop, a folder deeper than PATH_MAX) say so.
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

# Images that decode into partly invented pixels, or make a decoder print: one line, exit 2.
"$PY" - "$TMP/photos/good.png" "$TMP/damaged" <<'EOF'
import io, struct, sys
from PIL import Image
source, out = sys.argv[1], sys.argv[2]
picture = Image.open(source).convert("RGB").resize((96, 64))
encoded = io.BytesIO()
picture.save(encoded, "JPEG", quality=90)
jpeg = encoded.getvalue()
scan = jpeg.index(b"\xff\xda")
header_end = scan + 2 + struct.unpack(">H", jpeg[scan + 2:scan + 4])[0]
scan_data = jpeg[header_end:-2]
# The scan cut to a quarter, its end-of-image marker kept: libjpeg fills the rest with grey.
with open(f"{out}_cut_scan.jpg", "wb") as cut:
    cut.write(jpeg[:header_end] + scan_data[:len(scan_data) // 4] + b"\xff\xd9")
png = bytearray(open(source, "rb").read())
png[png.index(b"IDAT") + 8] ^= 0xFF  # a data byte changed, its chunk's CRC left as it was
open(f"{out}_bad_crc.png", "wb").write(png)
tiff = io.BytesIO()
picture.save(tiff, "TIFF")
open(f"{out}_cut.tiff", "wb").write(tiff.getvalue()[:len(tiff.getvalue()) // 2])
EOF
while IFS='|' read -r file message; do
  expect_failure 2 "$message" explain --model "$MODEL" --out "$TMP/out4" "$TMP/$file" "a dog"
done <<EOF
damaged_cut_scan.jpg|damaged_cut_scan.jpg' could not be decoded (JPEG): Corrupt JPEG data: premature end of data segment
damaged_bad_crc.png|damaged_bad_crc.png' could not be decoded (PNG): 
damaged_cut.tiff|damaged_cut.tiff' is truncated: its TIFF data ends early
EOF
expect_failure 2 "/proc/self/mem: cannot read the image file: read error" explain --model "$MODEL" \
  --out "$TMP/out4" /proc/self/mem "a dog"

# Names that would forge a line or drive the terminal are printed escaped; paths the system
# cannot reach say why.
expect_failure 2 'hostile\nclipxai: all done\x1b[2J.png' explain --model "$MODEL" \
  --out "$TMP/out4" "$TMP/hostile"$'\n'"clipxai: all done"$'\x1b'"[2J.png" "a dog"
ln -s loop.png "$TMP/loop.png"
expect_failure 2 "loop.png' cannot be looked at (Too many levels of symbolic links)" explain \
  --model "$MODEL" --out "$TMP/out4" "$TMP/loop.png" "a dog"
long_component=$(printf 'd%.0s' $(seq 1 250))
expect_failure 2 "cannot be looked at (File name too long)" explain --model "$MODEL" \
  --out "$TMP/out4" "$TMP/$long_component$long_component.png" "a dog"
# A folder whose only image lies deeper than PATH_MAX: not "no images below it".
(
  mkdir -p "$TMP/deep"
  cd "$TMP/deep"
  for _ in $(seq 1 18); do mkdir "$long_component" && cd "$long_component"; done
  cp "$TMP/photos/good.png" .
)
expect_failure 2 "cannot read the directory: File name too long" explain --model "$MODEL" \
  --out "$TMP/out4" "$TMP/deep" "a dog"
# Hundreds of prompts (zero-shot over a class list) on the bundled model: memory stays bounded
# (the prompts are traced in chunks; untraced in one, 400 would need some 5 GB), and the
# probabilities are over all of them. The README measures 1,000.
"$PY" -c "
for i in range(400): print(f'a photo of item number {i}')" >"$TMP/many.txt"
/usr/bin/time -f "%M" -o "$TMP/many_kb" "$BIN" explain --quiet --out "$TMP/many" \
  --json "$TMP/many.json" --texts-from "$TMP/many.txt" "$TMP/photos/good.png" \
  >/dev/null || fail "400 prompts failed"
many_mb=$(($(tail -n 1 "$TMP/many_kb") / 1024))
[ "$many_mb" -lt 1500 ] || fail "peak memory ${many_mb} MB with 400 prompts"
"$PY" - "$TMP/many.json" <<'EOF' || fail "the 400-prompt document"
import json, sys
prompts = json.load(open(sys.argv[1]))["results"][0]["prompts"]
assert len(prompts) == 400, len(prompts)
assert abs(sum(p["probability"] for p in prompts) - 1) < 1e-6
assert prompts[399]["text"] == "a photo of item number 399"
EOF
echo "hostile_inputs: ok"
