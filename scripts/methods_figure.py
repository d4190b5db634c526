"""The README's methods figure: one scene explained by every method, a row per prompt and a column
per method, the scene itself first. Runs `clipxai explain --method M` once per method.

    /usr/bin/python3 scripts/methods_figure.py --clipxai build/clipxai \
        examples/girl_boy_desktop.png docs/methods_girl_boy_desktop.png girl boy "desktop computer"
"""

import argparse
import json
import os
import subprocess
import tempfile

from PIL import Image, ImageDraw

METHODS = ["chefer2021", "rollout", "attention", "gradcam", "legrad", "grad-eclip"]
GAP, CAPTION, SIDE = 6, 18, 160


def explain(clipxai: str, method: str, image: str, prompts, out: str) -> dict:
    report = os.path.join(out, method + ".json")
    subprocess.run([clipxai, "explain", "--method", method, "--out", os.path.join(out, method),
                    "--json", report, image, *prompts], check=True, stdout=subprocess.DEVNULL)
    with open(report) as f:
        return json.load(f)["results"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clipxai", default="build/clipxai")
    parser.add_argument("image")
    parser.add_argument("figure")
    parser.add_argument("prompts", nargs="+")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        results = {m: explain(args.clipxai, m, args.image, args.prompts, out) for m in METHODS}
        columns = ["image"] + METHODS
        width = len(columns) * SIDE + (len(columns) - 1) * GAP + 140
        height = CAPTION + len(args.prompts) * (SIDE + GAP)
        figure = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(figure)
        scene = Image.open(args.image).convert("RGB").resize((SIDE, SIDE))
        for column, name in enumerate(columns):
            x = 140 + column * (SIDE + GAP)
            draw.text((x + 4, 3), name, fill="black")
            for row, prompt in enumerate(args.prompts):
                y = CAPTION + row * (SIDE + GAP)
                if column == 0:
                    draw.text((4, y + SIDE // 2 - 6), f'"{prompt}"', fill="black")
                    panel = scene
                else:
                    overlay = results[name]["prompts"][row]["overlay"]
                    panel = Image.open(overlay).convert("RGB").resize((SIDE, SIDE))
                figure.paste(panel, (x, y))
        figure.save(args.figure, optimize=True)


if __name__ == "__main__":
    main()
