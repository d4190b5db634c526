# Odd but valid images are explained: overlays at each image's own size.
set -eu
BIN=$1
SRC=$2
TMP=$3
. "$SRC/tests/cli/helpers.bash"

# name kind width height crops (pad where the letterbox is extreme or the decoding path differs)
cases="one_pixel.png rgb 1 1 center,pad
grey.png grey 30 20 center
rgba.png rgba 40 30 center,pad
palette.png palette 33 17 center
grey16.png grey16 24 16 center
rgb16.png rgb16 16 24 center
thin.png rgb 1 50 center,pad
wide.png rgb 300 2 center,pad
photo.jpg rgb 45 45 center
grey.bmp grey 20 12 center
rgba.webp rgba 25 25 center
rgb.tiff rgb 19 23 center"

while read -r name kind width height crops; do
  make_image "$TMP/$name" "$kind" "$width" "$height"
  for crop in ${crops//,/ }; do
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
