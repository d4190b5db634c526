#!/usr/bin/python3
"""Writes the image test inputs and their Pillow results to tests/data/image/.

Run with /usr/bin/python3 (Pillow 9.4, numpy). Everything is deterministic, so rerunning it
reproduces the committed files. Writes:
  - decode inputs in every supported format (grey, alpha, palette, 16-bit, EXIF-rotated JPEGs)
    with the 8-bit RGB image a correct decoder must produce (*.expected.png);
  - Pillow's Image.resize(size, BICUBIC) of an RGB image for several up- and downscales;
  - CLIP's preprocessing (torchvision Resize, CenterCrop, ToTensor, Normalize, reproduced here with
    PIL and numpy because torchvision is not installed) and clipxai's letterbox variant, as raw
    little-endian float32 [3, n, n] files;
  - broken files for the error tests;
  - manifest.json listing the cases, which tests/image_test.cpp reads.
"""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "image"

# CLIP's normalisation, as float32 like torchvision's Normalize.
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)

EXIF_ORIENTATION = 0x0112
# What turns an image stored with each EXIF orientation upright (as ImageOps.exif_transpose).
UPRIGHT_TRANSPOSE = {
    2: Image.FLIP_LEFT_RIGHT,
    3: Image.ROTATE_180,
    4: Image.FLIP_TOP_BOTTOM,
    5: Image.TRANSPOSE,
    6: Image.ROTATE_270,
    7: Image.TRANSVERSE,
    8: Image.ROTATE_90,
}


def synthetic_rgb(width, height, seed):
    """Gradients, a sharp-edged square and noise: smooth areas plus edges that overshoot."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    img = np.stack([r, g, b], axis=-1)
    square = (abs(x - width / 3) < width / 6) & (abs(y - height / 2) < height / 5)
    img[square] = [250, 5, 240]
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_png16(path, samples):
    """A 16-bit PNG (grey [h, w] or RGB [h, w, 3] uint16); Pillow cannot write 16-bit RGB."""
    colour_type = 0 if samples.ndim == 2 else 2
    height, width = samples.shape[:2]
    rows = samples.astype(">u2").reshape(height, -1).tobytes()
    stride = len(rows) // height
    raw = b"".join(b"\0" + rows[i * stride:(i + 1) * stride] for i in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
                     chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def torchvision_resize(img, size):
    """torchvision.transforms.Resize(size) on a PIL image: short side -> size."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return img.resize((new_w, new_h), Image.BICUBIC)


def center_crop_offsets(width, height, size):
    """torchvision's CenterCrop: Python's round, i.e. halves to even."""
    return int(round((width - size) / 2.0)), int(round((height - size) / 2.0))


def normalise(rgb):
    """ToTensor then Normalize, in float32 like torch: [h, w, 3] uint8 -> [3, h, w]."""
    x = rgb.astype(np.float32) / np.float32(255)
    return ((x - MEAN) / STD).transpose(2, 0, 1)


def clip_center(img, size):
    resized = torchvision_resize(img, size)
    left, top = center_crop_offsets(resized.width, resized.height, size)
    cropped = np.asarray(resized)[top:top + size, left:left + size]
    sx, sy = img.width / resized.width, img.height / resized.height
    return normalise(cropped), [left * sx, top * sy, size * sx, size * sy]


def letterbox(img, size):
    """clipxai's Pad mode: long side -> size, short side rounded (halves up, at least 1),
    placed at floor((size - short) / 2) on a canvas of the mean colour (0 after Normalize)."""
    w, h = img.size
    if w >= h:
        new_w, new_h = size, max(1, int(size * h / w + 0.5))
    else:
        new_w, new_h = max(1, int(size * w / h + 0.5)), size
    resized = np.asarray(img.resize((new_w, new_h), Image.BICUBIC))
    left, top = (size - new_w) // 2, (size - new_h) // 2
    out = np.zeros((3, size, size), dtype=np.float32)
    out[:, top:top + new_h, left:left + new_w] = normalise(resized)
    sx, sy = w / new_w, h / new_h
    return out, [-left * sx, -top * sy, size * sx, size * sy]


def save_decode_inputs(manifest):
    base = synthetic_rgb(24, 16, seed=1)
    rgb = Image.fromarray(base)
    cases = []

    def add(name, expected_rgb):
        expected = name.replace(".", "_") + ".expected.png"
        Image.fromarray(expected_rgb).save(OUT / expected)
        cases.append({"input": name, "expected": expected})

    def add_pil(name, img, orientation=1, **save_args):
        img.save(OUT / name, **save_args)
        with Image.open(OUT / name) as decoded:
            upright = decoded.convert("RGB")
            if orientation in UPRIGHT_TRANSPOSE:
                upright = upright.transpose(UPRIGHT_TRANSPOSE[orientation])
            add(name, np.asarray(upright))

    add_pil("rgb.png", rgb)
    add_pil("grey.png", rgb.convert("L"))
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(synthetic_rgb(24, 16, seed=2)[:, :, 0]))
    add_pil("rgba.png", rgba)
    add_pil("grey_alpha.png", rgba.convert("LA"))
    add_pil("palette.png", rgb.convert("P", palette=Image.ADAPTIVE, colors=16))
    add_pil("rgb.bmp", rgb)
    add_pil("rgb.tif", rgb, compression="tiff_lzw")
    # libtiff's RGBA interface, through which OpenCV reads TIFF, premultiplies unassociated alpha
    # (rounding as below), so transparent TIFF pixels come out composited on black.
    rgba.save(OUT / "rgba.tif")
    premultiplied = np.asarray(rgba).astype(np.uint32)
    add("rgba.tif", ((premultiplied[:, :, :3] * premultiplied[:, :, 3:] + 127) // 255)
        .astype(np.uint8))
    add_pil("rgb.webp", rgb, lossless=True)
    add_pil("rgb.jpg", rgb, quality=95)
    add_pil("grey.jpg", rgb.convert("L"), quality=95)

    # 16-bit samples become their high byte, as libpng's strip_16 does; Pillow itself would clip
    # 16-bit grey to 255 in convert("RGB"), which no one wants.
    rng = np.random.default_rng(3)
    rgb16 = base.astype(np.uint16) * 257 + rng.integers(0, 256, base.shape).astype(np.uint16)
    write_png16(OUT / "rgb16.png", rgb16)
    add("rgb16.png", (rgb16 >> 8).astype(np.uint8))
    grey16 = rgb16[:, :, 1]
    write_png16(OUT / "grey16.png", grey16)
    add("grey16.png", np.repeat((grey16 >> 8).astype(np.uint8)[:, :, None], 3, axis=2))

    # Every EXIF orientation in JPEG (which libjpeg users must apply) and WebP (which OpenCV
    # ignores), two each in PNG and TIFF; the expected image is the upright one.
    def exif(orientation):
        tags = Image.Exif()
        tags[EXIF_ORIENTATION] = orientation
        return tags.tobytes()

    for orientation in range(1, 9):
        add_pil(f"exif_orientation_{orientation}.jpg", rgb, orientation, quality=95,
                exif=exif(orientation))
        add_pil(f"exif_orientation_{orientation}.webp", rgb, orientation, lossless=True,
                exif=exif(orientation))
    for orientation in (3, 6):
        add_pil(f"exif_orientation_{orientation}.png", rgb, orientation, exif=exif(orientation))
    for orientation in (5, 8):  # Pillow's TIFF loader turns these upright itself
        add_pil(f"exif_orientation_{orientation}.tif", rgb,
                tiffinfo={EXIF_ORIENTATION: orientation})

    manifest["decode"] = cases


def save_resize_cases(manifest):
    source = "resize_source.png"
    Image.fromarray(synthetic_rgb(96, 80, seed=4)).save(OUT / source)
    cases = []
    sizes = [(13, 11), (31, 40), (150, 97), (17, 130), (1, 1), (96, 37), (41, 80), (95, 81)]
    with Image.open(OUT / source) as img:
        for width, height in sizes:
            expected = f"resize_{width}x{height}.png"
            img.resize((width, height), Image.BICUBIC).save(OUT / expected)
            cases.append({"input": source, "width": width, "height": height,
                          "expected": expected})
    manifest["resize"] = cases


def save_preprocess_cases(manifest):
    # Sizes chosen so that Resize(32) leaves crop margins of 5 (2.5 rounds to 2), 1 (0.5 -> 0)
    # and an odd-sized crop of 33; plus a 1x1 image and a 150:1 strip.
    inputs = {
        "pre_64x74.png": (64, 74),
        "pre_66x64.png": (66, 64),
        "pre_45x61.png": (45, 61),
        "pre_1x1.png": (1, 1),
        "pre_300x2.png": (300, 2),
    }
    for seed, (name, (width, height)) in enumerate(inputs.items(), start=10):
        Image.fromarray(synthetic_rgb(width, height, seed)).save(OUT / name)
    cases = []
    for name, size in [("pre_64x74.png", 32), ("pre_66x64.png", 32), ("pre_45x61.png", 33),
                       ("pre_1x1.png", 8), ("pre_300x2.png", 16)]:
        with Image.open(OUT / name) as img:
            img = img.convert("RGB")
            for mode, transform in [("center", clip_center), ("pad", letterbox)]:
                pixels, crop = transform(img, size)
                expected = f"{Path(name).stem}_{mode}{size}.f32"
                pixels.astype("<f4").tofile(OUT / expected)
                cases.append({"input": name, "resolution": size, "mode": mode,
                              "expected": expected, "crop": crop})
    manifest["preprocess"] = cases


def save_broken_inputs():
    jpeg = (OUT / "rgb.jpg").read_bytes()
    png = (OUT / "rgb.png").read_bytes()
    webp = (OUT / "rgb.webp").read_bytes()
    bmp = (OUT / "rgb.bmp").read_bytes()
    tiff = (OUT / "rgb.tif").read_bytes()
    (OUT / "empty.png").write_bytes(b"")
    (OUT / "truncated.jpg").write_bytes(jpeg[:len(jpeg) * 2 // 3])
    (OUT / "truncated_tail.jpg").write_bytes(jpeg[:-2])  # only the end-of-image marker is missing
    (OUT / "truncated.png").write_bytes(png[:len(png) * 2 // 3])
    (OUT / "truncated_tail.png").write_bytes(png[:-12])  # only the IEND chunk is missing
    (OUT / "truncated.webp").write_bytes(webp[:len(webp) * 2 // 3])
    (OUT / "truncated.bmp").write_bytes(bmp[:len(bmp) * 2 // 3])
    (OUT / "truncated.tif").write_bytes(tiff[:len(tiff) * 2 // 3])
    (OUT / "not_an_image.png").write_bytes(b"This is plain text, not a PNG.\n" * 4)
    (OUT / "garbage.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 2)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {}
    save_decode_inputs(manifest)
    save_resize_cases(manifest)
    save_preprocess_cases(manifest)
    save_broken_inputs()
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
