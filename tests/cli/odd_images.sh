# Odd but valid images are explained: overlays at each image's own size.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

# name kind width height
cases="one_pixel.png rgb 1 1
grey.png grey 30 20
rgba.png rgba 40 30
palette.png palette 33 17
grey16.png grey16 24 16
rgb16.png rgb16 16 24
thin.png rgb 1 50
wide.png rgb 300 2
photo.jpg rgb 45 45
grey.bmp grey 20 12
rgba.webp rgba 25 25
rgb.tiff rgb 19 23"

while read -r name kind width height; do
  make_image "$TMP/$name" "$kind" "$width" "$height"
  for crop in center pad; do
    "$BIN" explain --model "$MODEL" --out "$TMP/out_$crop" --crop "$crop" --json "$TMP/r.json" \
      "$TMP/$name" "a dog" >/dev/null || fail "explain --crop $crop $name exited $?"
    "$PY" - "$TMP/r.json" "$width" "$height" <<'PYEOF' || fail "$name --crop $crop"
import json, sys
from PIL import Image
doc = json.load(open(sys.argv[1]))
width, height = int(sys.argv[2]), int(sys.argv[3])
result = doc["results"][0]
assert (result["width"], result["height"]) == (width, height), result
prompt = result["prompts"][0]
x, y = prompt["peak"]
assert 0 <= x < width and 0 <= y < height, prompt["peak"]
overlay = Image.open(prompt["overlay"])
assert overlay.format == "PNG" and overlay.size == (width, height), overlay.size
PYEOF
  done
done <<<"$cases"
echo "odd images: ok"
