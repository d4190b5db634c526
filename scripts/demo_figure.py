"""The README's demo figure: the example scene, then its overlays for each prompt, side by side
with the prompt written under each. Reads the JSON report scripts/demo.sh writes.

    scripts/demo.sh && /usr/bin/python3 scripts/demo_figure.py clipxai-out/demo.json docs/demo_girl_boy_desktop.png
"""

import json
import sys

from PIL import Image, ImageDraw

GAP, CAPTION = 10, 22


def main():
    report_path, figure_path = sys.argv[1:3]
    with open(report_path) as f:
        result = json.load(f)["results"][0]
    panels = [("image", Image.open(result["image"]).convert("RGB"))]
    panels += [(p["text"], Image.open(p["overlay"]).convert("RGB")) for p in result["prompts"]]
    width = sum(im.width for _, im in panels) + GAP * (len(panels) - 1)
    height = max(im.height for _, im in panels) + CAPTION
    figure = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(figure)
    x = 0
    for caption, im in panels:
        figure.paste(im, (x, 0))
        draw.text((x + 4, im.height + 5), f'"{caption}"' if caption != "image" else caption, fill="black")
        x += im.width + GAP
    figure.save(figure_path, optimize=True)


if __name__ == "__main__":
    main()
