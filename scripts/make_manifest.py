"""Writes grounding manifests for `clipxai eval`, and the example scenes under examples/.

Manifest (JSON): {"images": [{"image": path relative to the manifest, "prompts": [names present,
then absent ones], "objects": [{"text": name, "box": [x0, y0, x1, y1] (pixels, x1/y1 exclusive),
"mask": PNG path relative to the manifest (255 = visible object)}]}]}.

Families (seeds never used in training, which renders seeds [0, steps * batch)):
  held_out     training's layouts and backgrounds, 2-4 objects, seeds from 2e9;
  independent  jittered grid layouts, other background generators and photographs, seeds from 3e9.
The scenes are exactly those scripts/eval_model.py measures, so Python and C++ numbers compare.

    /usr/bin/python3 scripts/make_manifest.py held_out /tmp/grounding/held_out.json --count 500
    /usr/bin/python3 scripts/make_manifest.py independent /tmp/grounding/independent.json --count 500
    /usr/bin/python3 scripts/make_manifest.py held_out /tmp/grounding/validation.json --count 500 \
        --seed-offset 1000000
    /usr/bin/python3 scripts/make_manifest.py examples examples/manifest.json
    /usr/bin/python3 scripts/make_manifest.py demo /tmp/grounding/demo.json --count 200
    /usr/bin/python3 scripts/make_manifest.py demo /tmp/grounding/dog_cat_pizza.json --count 200 \
        --concepts dog,cat,pizza
    /usr/bin/python3 scripts/make_manifest.py trios /tmp/grounding/trios.json --count 200

"demo" renders the first example's concepts (girl, boy, desktop computer; or --concepts) the way
examples/ is rendered, seeds 0..count-1: how often the README's demo works on scenes not picked
by eye. "trios" renders three concepts drawn at random for each seed the same way: what "demo"
is to be compared with.
"""

import argparse
import json
import os
import random

import numpy as np
from PIL import Image

import emoji_concepts
import eval_model
import render_scenes

RESOLUTION = 224
# (file stem, concepts in drawing order, seed): "independent" scenes (layouts and backgrounds
# training never saw), seeds picked by eye for clear layouts.
EXAMPLES = [
    ("girl_boy_desktop", ["girl", "boy", "desktop computer"], 0),
    ("dog_cat_pizza", ["dog", "cat", "pizza"], 2),
    ("car_tree_sun", ["car", "tree", "sun"], 3),
    ("elephant_guitar", ["elephant", "guitar"], 6),
]


def example_scene(atlas, stem: str, concepts, seed: int):
    """(stem, scene, prompts) of an example: an "independent" scene of the given concepts."""
    scene = render_scenes.render_scene(atlas, seed, RESOLUTION, "independent", concepts=concepts, augment=False)
    return stem, scene, eval_model.scene_prompts(scene, seed)


def object_entry(obj, mask_path, manifest_dir):
    entry = {"text": obj.concept, "box": obj.box}
    if mask_path is not None:
        Image.fromarray((obj.mask * 255).astype(np.uint8)).save(mask_path, optimize=True)
        entry["mask"] = os.path.relpath(mask_path, manifest_dir)
    return entry


def write_manifest(path: str, scenes, image_dir: str, with_masks: bool):
    manifest_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(image_dir, exist_ok=True)
    images = []
    for stem, scene, prompts in scenes:
        image_path = os.path.join(image_dir, stem + ".png")
        scene.image.save(image_path, optimize=True)
        objects = [object_entry(o, os.path.join(image_dir, f"{stem}_mask{k}.png") if with_masks else None,
                                manifest_dir) for k, o in enumerate(scene.objects)]
        images.append({"image": os.path.relpath(image_path, manifest_dir), "prompts": prompts, "objects": objects})
    with open(path, "w") as f:
        json.dump({"images": images}, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(images)} images in {image_dir}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("family", choices=["held_out", "independent", "examples", "demo", "trios"])
    parser.add_argument("manifest", help="JSON file to write")
    parser.add_argument("--images", help="directory for the PNGs (default: beside the manifest, "
                                         "in a folder named after it)")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--no-masks", action="store_true", help="boxes only")
    parser.add_argument("--concepts", help="demo: comma-separated concept names (default: the first example's)")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="held_out, independent: start this far into the family's seeds (another split "
                             "of the same family, e.g. for choosing settings before measuring on offset 0)")
    args = parser.parse_args()
    if args.concepts and args.family != "demo":
        parser.error("--concepts is for the demo family")
    if args.seed_offset and args.family not in ("held_out", "independent"):
        parser.error("--seed-offset is for the held_out and independent families")
    atlas = render_scenes.EmojiAtlas()
    manifest_dir = os.path.dirname(os.path.abspath(args.manifest))
    if args.family == "examples":
        scenes = [example_scene(atlas, stem, concepts, seed) for stem, concepts, seed in EXAMPLES]
        write_manifest(args.manifest, scenes, args.images or manifest_dir, with_masks=False)
        return
    image_dir = args.images or os.path.splitext(os.path.abspath(args.manifest))[0]
    if args.family == "trios":
        scenes = (example_scene(atlas, f"trios_{seed}", random.Random(seed).sample(emoji_concepts.NAMES, 3), seed)
                  for seed in range(args.count))
    elif args.family == "demo":
        stem, concepts, _ = EXAMPLES[0]
        if args.concepts:
            concepts = args.concepts.split(",")
            unknown = sorted(set(concepts) - set(emoji_concepts.NAMES))
            if unknown:
                parser.error(f"--concepts: not concepts of the model: {', '.join(unknown)}")
            stem = "_".join(c.replace(" ", "-") for c in concepts)
        scenes = (example_scene(atlas, f"{stem}_{seed}", concepts, seed) for seed in range(args.count))
    else:
        scenes = ((f"{args.family}_{seed}", scene, eval_model.scene_prompts(scene, seed))
                  for seed, scene in eval_model.held_out_scenes(atlas, args.family, args.count, RESOLUTION,
                                                                args.seed_offset))
    write_manifest(args.manifest, scenes, image_dir, with_masks=not args.no_masks)


if __name__ == "__main__":
    main()
