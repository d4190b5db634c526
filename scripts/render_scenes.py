"""Renders emoji scenes with exact ground truth: 1-4 emoji on varied backgrounds, each with its
box and mask (the glyph's visible alpha).

Two layout/background families, so a model trained on one can be checked on the other:
  "train"       — random positions and sizes (15-60% of the side), some overlap; flat colours,
                  linear gradients, value noise, stripes, crops of some skimage photographs.
  "independent" — jittered grid cells; radial gradients, checkerboards, polka dots, blobs and
                  crops of *other* skimage photographs, never seen in training.
The trainer renders "train" scenes on the fly from per-scene seeds; make_manifest.py renders
held-out ones from seed ranges the trainer never uses.

    atlas = EmojiAtlas()
    scene = render_scene(atlas, seed=123, resolution=224, style="train", num_objects=3)
    scene.image (PIL RGB), scene.objects[i].concept / .box [x0, y0, x1, y1] / .mask (bool HxW)
"""

import dataclasses
import random
from typing import List, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

import emoji_concepts

FONT_PATH = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
FONT_SIZE = 109  # Noto Color Emoji is a bitmap font; 109 is its only strike size.
TRAIN_PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "grass", "brick", "gravel", "camera", "moon"]
INDEPENDENT_PHOTOS = ["hubble_deep_field", "retina", "colorwheel", "coins", "page", "immunohistochemistry"]
MIN_SCALE, MAX_SCALE = 0.15, 0.6
MIN_VISIBLE = 0.6  # an object keeps at least this share of its glyph visible


@dataclasses.dataclass
class SceneObject:
    concept: str
    box: List[int]  # [x0, y0, x1, y1] of the visible mask, x1/y1 exclusive
    mask: np.ndarray  # bool [H, W]


@dataclasses.dataclass
class Scene:
    image: Image.Image
    objects: List[SceneObject]


class EmojiAtlas:
    """Every concept's glyph, rendered once and cropped to its alpha box."""

    def __init__(self, names: Optional[List[str]] = None):
        font = ImageFont.truetype(FONT_PATH, FONT_SIZE)
        self.glyphs = {}
        for name, emoji in emoji_concepts.CONCEPTS:
            if names is not None and name not in names:
                continue
            canvas = Image.new("RGBA", (2 * FONT_SIZE, 2 * FONT_SIZE), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((0, 0), emoji, font=font, embedded_color=True)
            box = canvas.getbbox()
            if box is None:
                raise RuntimeError(f"{FONT_PATH} has no glyph for {name} ({emoji!r})")
            self.glyphs[name] = canvas.crop(box)
        self.names = list(self.glyphs)


_photo_cache = {}


def _photo(name: str) -> Image.Image:
    if name not in _photo_cache:
        from skimage import data
        _photo_cache[name] = Image.fromarray(getattr(data, name)()).convert("RGB")
    return _photo_cache[name]


def _random_colour(rng: random.Random):
    return tuple(rng.randrange(256) for _ in range(3))


def _linear_gradient(rng, size):
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:size, 0:size] / size
    t = (np.cos(angle) * xs + np.sin(angle) * ys)
    t = (t - t.min()) / (t.max() - t.min() + 1e-6)
    a, b = np.array(_random_colour(rng)), np.array(_random_colour(rng))
    return (a * (1 - t[..., None]) + b * t[..., None]).astype(np.uint8)


def _radial_gradient(rng, size):
    cx, cy = rng.uniform(0, size), rng.uniform(0, size)
    ys, xs = np.mgrid[0:size, 0:size]
    t = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    t = t / t.max()
    a, b = np.array(_random_colour(rng)), np.array(_random_colour(rng))
    return (a * (1 - t[..., None]) + b * t[..., None]).astype(np.uint8)


def _value_noise(rng, size):
    cells = rng.choice([2, 4, 8, 16, 32, 64])
    seed = rng.randrange(2 ** 31)
    low = np.random.default_rng(seed).integers(0, 256, (cells, cells, 3), dtype=np.uint8)
    if rng.random() < 0.5:  # tinted rather than fully random colour noise
        low = (low.mean(axis=2, keepdims=True) * (np.array(_random_colour(rng)) / 255.0)).astype(np.uint8)
    resample = Image.NEAREST if rng.random() < 0.3 else Image.BICUBIC
    return np.asarray(Image.fromarray(np.ascontiguousarray(low)).resize((size, size), resample))


def _stripes(rng, size):
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(8, 60)
    ys, xs = np.mgrid[0:size, 0:size]
    t = ((np.cos(angle) * xs + np.sin(angle) * ys) / period) % 1.0 < 0.5
    a, b = np.array(_random_colour(rng)), np.array(_random_colour(rng))
    return np.where(t[..., None], a, b).astype(np.uint8)


def _checkerboard(rng, size):
    period = rng.uniform(10, 70)
    ys, xs = np.mgrid[0:size, 0:size]
    t = ((xs // period + ys // period) % 2) == 0
    a, b = np.array(_random_colour(rng)), np.array(_random_colour(rng))
    return np.where(t[..., None], a, b).astype(np.uint8)


def _polka_dots(rng, size):
    image = Image.new("RGB", (size, size), _random_colour(rng))
    draw = ImageDraw.Draw(image)
    colour, radius, step = _random_colour(rng), rng.uniform(3, 12), rng.uniform(20, 50)
    for y in np.arange(0, size + step, step):
        for x in np.arange((y / step % 2) * step / 2, size + step, step):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    return np.asarray(image)


def _blobs(rng, size):
    image = Image.new("RGB", (size, size), _random_colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 12)):
        x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(10, size / 2)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_random_colour(rng))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(rng.uniform(2, 10))))


def _photo_crop(rng, size, names):
    photo = _photo(names[rng.randrange(len(names))])
    side = rng.uniform(0.3, 1.0) * min(photo.size)
    x0, y0 = rng.uniform(0, photo.size[0] - side), rng.uniform(0, photo.size[1] - side)
    crop = photo.crop((int(x0), int(y0), int(x0 + side), int(y0 + side))).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(crop)


def background(rng: random.Random, size: int, style: str) -> Image.Image:
    if style == "train":
        kind = rng.choice(["flat", "linear", "noise", "stripes", "photo", "photo"])
        pixels = {
            "flat": lambda: np.full((size, size, 3), _random_colour(rng), dtype=np.uint8),
            "linear": lambda: _linear_gradient(rng, size),
            "noise": lambda: _value_noise(rng, size),
            "stripes": lambda: _stripes(rng, size),
            "photo": lambda: _photo_crop(rng, size, TRAIN_PHOTOS),
        }[kind]()
    elif style == "independent":
        kind = rng.choice(["radial", "checker", "dots", "blobs", "photo"])
        pixels = {
            "radial": lambda: _radial_gradient(rng, size),
            "checker": lambda: _checkerboard(rng, size),
            "dots": lambda: _polka_dots(rng, size),
            "blobs": lambda: _blobs(rng, size),
            "photo": lambda: _photo_crop(rng, size, INDEPENDENT_PHOTOS),
        }[kind]()
    else:
        raise ValueError(f"unknown scene style {style!r}")
    return Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")


def _glyph_variant(rng, glyph: Image.Image, side: float) -> Image.Image:
    """The glyph scaled so its longer side is `side` pixels, maybe mirrored or slightly turned."""
    if rng.random() < 0.3:
        glyph = glyph.transpose(Image.FLIP_LEFT_RIGHT)
    scale = side / max(glyph.size)
    glyph = glyph.resize((max(1, round(glyph.size[0] * scale)), max(1, round(glyph.size[1] * scale))),
                         Image.BILINEAR)
    if rng.random() < 0.3:
        glyph = glyph.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR, expand=True)
        box = glyph.getbbox()
        glyph = glyph.crop(box) if box else glyph
    return glyph


def _placements(rng, style, sizes, resolution):
    """Top-left corners for glyphs of the given sizes: free positions, or jittered grid cells."""
    if style == "train":
        return [(rng.randrange(resolution - w + 1), rng.randrange(resolution - h + 1)) for w, h in sizes]
    cells_per_side = 2 if len(sizes) <= 4 and rng.random() < 0.7 else 3
    cells = rng.sample(range(cells_per_side ** 2), len(sizes))
    cell = resolution / cells_per_side
    corners = []
    for (w, h), index in zip(sizes, cells):
        cx = (index % cells_per_side + 0.5) * cell + rng.uniform(-0.2, 0.2) * cell
        cy = (index // cells_per_side + 0.5) * cell + rng.uniform(-0.2, 0.2) * cell
        corners.append((int(min(max(cx - w / 2, 0), resolution - w)), int(min(max(cy - h / 2, 0), resolution - h))))
    return corners


def render_scene(atlas: EmojiAtlas, seed: int, resolution: int = 224, style: str = "train",
                 num_objects: Optional[int] = None, concepts: Optional[List[str]] = None,
                 augment: bool = True) -> Scene:
    """One scene, fully determined by its arguments. `concepts` fixes which emoji appear (in
    drawing order); otherwise 1-4 distinct concepts are drawn at random."""
    rng = random.Random(seed)
    if concepts is None:
        count = num_objects if num_objects is not None else rng.choice([1, 2, 2, 3, 3, 4])
        concepts = rng.sample(atlas.names, count)
    max_scale = MAX_SCALE if style == "train" else {1: 0.6, 2: 0.45}.get(len(concepts), 0.33)
    for _attempt in range(50):
        glyphs = [_glyph_variant(rng, atlas.glyphs[c], rng.uniform(MIN_SCALE, max_scale) * resolution)
                  for c in concepts]
        corners = _placements(rng, style, [g.size for g in glyphs], resolution)
        alphas = []
        for glyph, (x, y) in zip(glyphs, corners):
            alpha = np.zeros((resolution, resolution), dtype=np.float32)
            alpha[y:y + glyph.size[1], x:x + glyph.size[0]] = np.asarray(glyph.getchannel("A")) / 255.0
            alphas.append(alpha)
        # Later glyphs are drawn over earlier ones; what stays visible is the ground truth.
        masks = []
        for i, alpha in enumerate(alphas):
            covered = np.zeros_like(alpha)
            for later in alphas[i + 1:]:
                covered = np.maximum(covered, later)
            masks.append((alpha > 0.5) & (covered < 0.5))
        if all(m.sum() >= MIN_VISIBLE * (a > 0.5).sum() for m, a in zip(masks, alphas)):
            break
    image = background(rng, resolution, style)
    if augment and rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))
    image = image.convert("RGBA")
    for glyph, corner in zip(glyphs, corners):
        image.alpha_composite(glyph, dest=corner)
    image = image.convert("RGB")
    if augment:
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.85, 1.15))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.85, 1.15))
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.8, 1.2))
        if rng.random() < 0.2:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    objects = []
    for concept, mask in zip(concepts, masks):
        ys, xs = np.nonzero(mask)
        objects.append(SceneObject(concept, [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                                   mask))
    return Scene(image, objects)


if __name__ == "__main__":
    import argparse
    import time
    parser = argparse.ArgumentParser(description="Render a few scenes to look at, and time the renderer.")
    parser.add_argument("out_dir")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--style", default="train", choices=["train", "independent"])
    args = parser.parse_args()
    atlas = EmojiAtlas()
    start = time.time()
    for seed in range(args.count):
        scene = render_scene(atlas, seed, style=args.style)
        scene.image.save(f"{args.out_dir}/{args.style}_{seed}.png")
        print(seed, [(o.concept, o.box) for o in scene.objects])
    print(f"{(time.time() - start) / args.count * 1000:.1f} ms per scene")
