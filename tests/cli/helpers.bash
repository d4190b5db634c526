# Shared by the tests/cli/*.sh end-to-end tests; sourced after BIN, SRC and TMP are set.
# (Not a test itself: CTest runs only *.sh.)

PY=/usr/bin/python3  # Debian's python3 with numpy and Pillow
MODEL="$SRC/tests/data/model/tiny_vit.pt"  # tiny random-weight CLIP with an embedded vocabulary

rm -rf "$TMP"
mkdir -p "$TMP"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# make_image PATH KIND WIDTH HEIGHT — a test image with some structure. KIND: rgb, grey, rgba,
# palette, grey16 (16-bit grey PNG), rgb16 (16-bit RGB PNG); the format follows PATH's extension.
make_image() {
  "$PY" - "$@" <<'EOF'
import struct, sys, zlib
import numpy as np
from PIL import Image

path, kind, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
y, x = np.mgrid[0:height, 0:width]
rgb = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)),
                ((x + y) * 37) % 256], axis=-1).astype(np.uint8)

def write_png16_rgb(path, pixels):
    # Pillow cannot write 16-bit RGB PNGs; write the chunks directly.
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 16, 2, 0, 0, 0)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
                  chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

if kind == "rgb":
    Image.fromarray(rgb).save(path)
elif kind == "grey":
    Image.fromarray(rgb[..., 0]).save(path)
elif kind == "rgba":
    alpha = np.where(x < width // 2, 255, 64).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
elif kind == "palette":
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16).save(path)
elif kind == "grey16":
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257), "I;16").save(path)
elif kind == "rgb16":
    write_png16_rgb(path, rgb.astype(np.uint16) * 257)
else:
    sys.exit("unknown image kind " + kind)
EOF
}

# expect_failure CODE NAME ARGS... — runs clipxai with ARGS and expects exit CODE within two
# minutes (not a hang) and exactly one line on stderr, starting "clipxai: " and naming NAME.
expect_failure() {
  local code=$1 name=$2
  shift 2
  local status=0
  timeout 120 "$BIN" "$@" >"$TMP/stdout" 2>"$TMP/stderr" || status=$?
  [ "$status" -ne 124 ] || fail "clipxai $* hung"
  [ "$status" -eq "$code" ] ||
    fail "clipxai $* exited $status, expected $code; stderr: $(cat "$TMP/stderr")"
  [ "$(wc -l <"$TMP/stderr")" -eq 1 ] || fail "clipxai $*: not one line on stderr: $(cat "$TMP/stderr")"
  grep -q '^clipxai: ' "$TMP/stderr" || fail "clipxai $*: message lacks the prefix: $(cat "$TMP/stderr")"
  grep -qF -- "$name" "$TMP/stderr" || fail "clipxai $*: message does not name '$name': $(cat "$TMP/stderr")"
}
