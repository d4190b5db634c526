"""The authors' CLIP notebook algorithm as a whole program, the Python side of scripts/bench.sh.

Does what `clipxai explain` does, the notebook's way: loads the archive (torch.jit.load, its
state dict into clip_model.CLIP, fp32), decodes each image with PIL and preprocesses it as CLIP
does (short side to R with PIL's bicubic, centre crop, normalise), tokenizes the prompts to the
full context with learn_bpe.SimpleTokenizer (or takes token ids), then runs the notebook's
`interpret` (make_reference_models.interpret: the image repeated once per prompt through the
whole model with autograd, the text tower over every context slot, one autograd.grad per kept
layer), and writes per prompt an overlay PNG at the original resolution (map upsampled
bilinearly over the crop, min-max normalised, jet, blended, outside of the crop dimmed) and a
JSON report with the scores, grids, token relevances and the time of each phase.

    /usr/bin/python3 scripts/bench_notebook.py --model M.pt --vocab bpe_simple_vocab_16e6.txt.gz \
        --out DIR --json DIR/result.json --threads 2 photo.jpg "a dog" "a cat"
    /usr/bin/python3 scripts/bench_notebook.py --model M.pt --ids 49406,1929,49407 ... IMAGE_DIR
"""

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Dict, List, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_model  # noqa: E402
import learn_bpe  # noqa: E402
import make_reference_models  # noqa: E402

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
ALPHA = 0.5
OUTSIDE_CROP_DIM = 0.4
PNG_COMPRESSION = 1  # zlib's fastest, as OpenCV's PNG default that clipxai uses


def image_paths(arguments: List[str]) -> List[str]:
    """Files as given; directories as every image below them, in sorted order."""
    paths = []
    for argument in arguments:
        if os.path.isdir(argument):
            for root, _, files in sorted(os.walk(argument)):
                paths += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_SUFFIXES)]
        else:
            paths.append(argument)
    return paths


def preprocess(picture: Image.Image, resolution: int, mean, std) -> Tuple[torch.Tensor, Tuple[float, ...]]:
    """CLIP's Resize(R, bicubic) + CenterCrop(R) + ToTensor + Normalize. Returns the [3, R, R]
    pixels and the crop (x, y, width, height) in original pixels."""
    width, height = picture.size
    short, long = (width, height) if width <= height else (height, width)
    resized_long = int(resolution * long / short)
    size = (resolution, resized_long) if width <= height else (resized_long, resolution)
    resized = picture.resize(size, Image.BICUBIC)
    left = int(round((size[0] - resolution) / 2.0))
    top = int(round((size[1] - resolution) / 2.0))
    crop = resized.crop((left, top, left + resolution, top + resolution))
    pixels = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255.0).permute(2, 0, 1)
    pixels = (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    scale_x, scale_y = width / size[0], height / size[1]
    return pixels, (left * scale_x, top * scale_y, resolution * scale_x, resolution * scale_y)


def jet(values: np.ndarray) -> np.ndarray:
    """OpenCV's COLORMAP_JET of values in [0, 1] -> uint8 RGB."""
    channels = [np.clip(1.5 - np.abs(4.0 * values - offset), 0.0, 1.0) for offset in (3.0, 2.0, 1.0)]
    return (np.stack(channels, axis=-1) * 255.0 + 0.5).astype(np.uint8)


def overlay(rgb: np.ndarray, grid: torch.Tensor, crop) -> Tuple[np.ndarray, List[int]]:
    """The map upsampled bilinearly onto the crop of the original image, min-max normalised,
    jet-coloured and blended; outside of the crop dimmed. Returns the picture and the peak [x, y]."""
    height, width = rgb.shape[:2]
    x0, y0, crop_width, crop_height = crop
    left, top = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    right = min(width, int(math.ceil(x0 + crop_width)))
    bottom = min(height, int(math.ceil(y0 + crop_height)))
    region = F.interpolate(grid[None, None], size=(bottom - top, right - left), mode="bilinear",
                           align_corners=False)[0, 0].numpy()
    low, high = region.min(), region.max()
    normalised = (region - low) / (high - low) if high > low else np.zeros_like(region)
    peak_y, peak_x = np.unravel_index(np.argmax(region), region.shape)
    picture = rgb.astype(np.float32) * OUTSIDE_CROP_DIM
    inside = rgb[top:bottom, left:right].astype(np.float32)
    picture[top:bottom, left:right] = (1 - ALPHA) * inside + ALPHA * jet(normalised)
    return np.clip(picture + 0.5, 0, 255).astype(np.uint8), [int(left + peak_x), int(top + peak_y)]


def write_atomically(path: str, write) -> None:
    partial = path + ".partial"
    write(partial)
    os.replace(partial, path)


def slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")
    return cleaned[:60] or "prompt"


def prompt_ids(args, embedded_vocabulary, context_length: int,
               vocab_size: int) -> Tuple[List[str], torch.Tensor, List[List[str]]]:
    """(texts, ids [P, context], readable tokens per prompt); the vocabulary is --vocab, else the
    one embedded in the archive."""
    if args.ids:
        rows = [[int(i) for i in ids.split(",")] for ids in args.ids]
        texts = [" ".join(map(str, row[1:-1])) for row in rows]
        ids = torch.zeros(len(rows), context_length, dtype=torch.long)
        for index, row in enumerate(rows):
            ids[index, :len(row)] = torch.tensor(row)
        return texts, ids, [[str(i) for i in row[1:-1]] for row in rows]
    if args.vocab:
        with open(args.vocab, "rb") as f:
            vocabulary = f.read()
    else:
        vocabulary = embedded_vocabulary
    tokenizer = learn_bpe.SimpleTokenizer(vocabulary, num_merges=vocab_size - 514)
    ids = tokenizer.tokenize(args.texts, context_length)
    tokens = [[tokenizer.decoder[int(i)].replace("</w>", "") for i in row[1:int(row.argmax())]] for row in ids]
    return list(args.texts), ids, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", help="image file or directory of images")
    parser.add_argument("texts", nargs="*", help="prompts (tokenized with --vocab or the archive's)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--vocab", help="OpenAI-format bpe_simple_vocab_16e6.txt.gz (default: embedded)")
    parser.add_argument("--ids", action="append", metavar="SOT,ID,...,EOT",
                        help="a prompt as token ids instead of text (repeat per prompt)")
    parser.add_argument("--out", required=True, help="directory for the overlays")
    parser.add_argument("--json", help="JSON report path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--start-layer", type=int, default=-1)
    parser.add_argument("--start-layer-text", type=int, default=-1)
    args = parser.parse_args()
    if bool(args.texts) == bool(args.ids):
        parser.error("give prompts either as TEXT or as --ids")
    torch.set_num_threads(args.threads)
    timings: Dict[str, float] = {"start": time.perf_counter() - PROCESS_START}

    started = time.perf_counter()
    model, config, embedded_vocabulary = clip_model.load_archive(args.model)
    model.eval()
    if args.texts and not (args.vocab or embedded_vocabulary):
        parser.error(f"{args.model} embeds no vocabulary: give --vocab or --ids")
    texts, ids, tokens = prompt_ids(args, embedded_vocabulary, model.context_length, model.vocab_size)
    timings["load"] = time.perf_counter() - started
    resolution = model.visual.input_resolution
    mean = config.get("image_mean", clip_model.OPENAI_IMAGE_MEAN)
    std = config.get("image_std", clip_model.OPENAI_IMAGE_STD)
    os.makedirs(args.out, exist_ok=True)

    results = []
    for phase in ("decode", "explain", "render", "write"):
        timings[phase] = 0.0
    for path in image_paths([args.image]):
        started = time.perf_counter()
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
        pixels, crop = preprocess(picture, resolution, mean, std)
        rgb = np.asarray(picture)
        timings["decode"] += time.perf_counter() - started

        started = time.perf_counter()
        case = make_reference_models.interpret(model, pixels, ids, args.start_layer, args.start_layer_text)
        timings["explain"] += time.perf_counter() - started

        prompts = []
        stem = os.path.splitext(os.path.basename(path))[0]
        for p, text in enumerate(texts):
            started = time.perf_counter()
            picture_out, peak = overlay(rgb, torch.tensor(case["grids"][p]), crop)
            timings["render"] += time.perf_counter() - started
            started = time.perf_counter()
            overlay_path = os.path.join(args.out, f"{stem}__{slug(text)}.png")
            write_atomically(overlay_path, lambda name: Image.fromarray(picture_out).save(
                name, format="PNG", compress_level=PNG_COMPRESSION))
            timings["write"] += time.perf_counter() - started
            prompts.append({
                "text": text, "logit": case["logits"][p], "cosine": case["cosines"][p],
                "probability": case["probabilities"][p], "grid": case["grids"][p], "peak": peak,
                "tokens": [{"token": t, "relevance": r} for t, r in zip(tokens[p], case["text_relevance"][p])],
                "overlay": overlay_path,
            })
        results.append({"image": path, "width": picture.width, "height": picture.height,
                        "crop": dict(zip(("x", "y", "width", "height"), crop)), "prompts": prompts})

    timings["total"] = time.perf_counter() - PROCESS_START
    report = {
        "model": {"path": args.model, **model.architecture()},
        "method": {"name": "chefer2021 (notebook algorithm)", "start_layer": args.start_layer,
                   "start_layer_text": args.start_layer_text},
        "results": results,
        "errors": [],
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
    if args.json:
        def write_json(name: str) -> None:
            with open(name, "w") as f:
                json.dump(report, f)
                f.write("\n")
        write_atomically(args.json, write_json)


if __name__ == "__main__":
    main()
