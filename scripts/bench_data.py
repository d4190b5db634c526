"""Inputs for scripts/bench.sh: random-weight CLIP archives at OpenAI's sizes and 640x480 photos.

Archives are written in OpenAI's released layout (traced, fp16 weights; see
include/clipxai/model.h) with the random weights of make_reference_models.py (std 1/sqrt(fan in),
so attention is neither uniform nor one-hot). Photos are scikit-image's bundled sample pictures
scaled and centre-cropped to 640x480, then noise with random shapes, as JPEG.

    /usr/bin/python3 scripts/bench_data.py archive b32 DIR/vit_b32.pt
    /usr/bin/python3 scripts/bench_data.py photos 16 DIR/photos
"""

import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_model  # noqa: E402
import make_reference_models  # noqa: E402

TEXT_TOWER = dict(embed_dim=512, context_length=77, vocab_size=49408, transformer_width=512,
                  transformer_heads=8, transformer_layers=12)
# OpenAI's ViT-B/32 and ViT-B/16 (clip.load's build_model arguments).
SIZES = {
    "b32": dict(image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                **TEXT_TOWER),
    "b16": dict(image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                **TEXT_TOWER),
}
SAMPLE_PICTURES = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                   "hubble_deep_field", "retina", "colorwheel"]
PHOTO_SIZE = (640, 480)


def write_archive(size: str, path: str, seed: int) -> None:
    model = clip_model.CLIP(**SIZES[size])
    make_reference_models.randomise(model, torch.Generator().manual_seed(seed))
    partial = path + ".partial"
    clip_model.save_archive(model, partial, {"name": f"random-vit-{size}"}, None, half=True)
    os.replace(partial, path)


def cover(picture: Image.Image, size) -> Image.Image:
    """Scales to cover `size`, then crops the centre."""
    scale = max(size[0] / picture.width, size[1] / picture.height)
    scaled = picture.resize((max(size[0], round(picture.width * scale)),
                             max(size[1], round(picture.height * scale))), Image.BICUBIC)
    left, top = (scaled.width - size[0]) // 2, (scaled.height - size[1]) // 2
    return scaled.crop((left, top, left + size[0], top + size[1]))


def shapes_on_noise(rng: np.random.Generator, size) -> Image.Image:
    noise = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    picture = Image.fromarray(noise)
    draw = ImageDraw.Draw(picture)
    for _ in range(6):
        x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
        w, h = rng.integers(40, 240, size=2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = (int(x), int(y), int(x + w), int(y + h))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return picture


def write_photos(count: int, directory: str, seed: int) -> None:
    import skimage.data  # only here: it is slow to import

    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        if index < len(SAMPLE_PICTURES):
            picture = cover(Image.fromarray(getattr(skimage.data, SAMPLE_PICTURES[index])()).convert("RGB"),
                            PHOTO_SIZE)
        else:
            picture = shapes_on_noise(rng, PHOTO_SIZE)
        picture.save(os.path.join(directory, f"photo_{index:02d}.jpg"), quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    archive = commands.add_parser("archive", help="write a random-weight archive")
    archive.add_argument("size", choices=sorted(SIZES))
    archive.add_argument("path")
    archive.add_argument("--seed", type=int, default=5)
    photos = commands.add_parser("photos", help="write COUNT 640x480 JPEG photos")
    photos.add_argument("count", type=int)
    photos.add_argument("directory")
    photos.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.command == "archive":
        write_archive(args.size, args.path, args.seed)
    else:
        write_photos(args.count, args.directory, args.seed)


if __name__ == "__main__":
    main()
