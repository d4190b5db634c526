"""Measures a CLIP archive on held-out emoji scenes with the Python reference of the default
explanation: Chefer et al.'s relevance over the vision layers from the archive's
"relevance_start_layer" on (absent: the last layer only, as the authors' CLIP notebook with
start_layer = -1), image map = R[CLS, patches] upsampled bilinearly to the input.

Metrics, per scene family (train-style 2-4 objects; independent layouts/backgrounds):
  pointing        peak of the upsampled map inside the named object's box
  pointing_mask   the same peak inside its visible mask
  pointing_patch  centre of the map's highest patch inside the box (no upsampling tie-breaking)
  top1_absent     the object's name scores above every absent concept's name
  top1_prompts    ... above the ABSENT_PROMPTS absent names the manifest lists for its scene

    /usr/bin/python3 scripts/eval_model.py models/clipxai-emoji-vit.pt --scenes 300
    /usr/bin/python3 scripts/eval_model.py models/clipxai-emoji-vit.pt --card models/clipxai-emoji-vit.json
"""

import argparse
import json
import random
import time
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

import card_metrics
import clip_model
import emoji_concepts
import learn_bpe
import make_reference_models
import render_scenes

# Scene seed ranges: training uses [0, 2e9); the held-out families start here.
HELD_OUT_SEED = 2_000_000_000
INDEPENDENT_SEED = 3_000_000_000
ABSENT_PROMPTS = 8


def scene_prompts(scene, seed: int) -> List[str]:
    """The names present in a held-out scene, then ABSENT_PROMPTS absent ones (as in the manifest)."""
    present = [o.concept for o in scene.objects]
    absent = [n for n in emoji_concepts.NAMES if n not in present]
    return present + random.Random(seed).sample(absent, ABSENT_PROMPTS)


def held_out_scenes(atlas, family: str, count: int, resolution: int, seed_offset: int = 0):
    """(seed, scene) pairs of a held-out family: "held_out" (training's layouts and backgrounds,
    2-4 objects) or "independent" (grid layouts, other backgrounds and photographs)."""
    base = HELD_OUT_SEED if family == "held_out" else INDEPENDENT_SEED
    style = "train" if family == "held_out" else "independent"
    for i in range(count):
        seed = base + seed_offset + i
        yield seed, render_scenes.render_scene(atlas, seed, resolution, style, num_objects=2 + seed % 3,
                                               augment=False)


def to_tensor(images, mean, std) -> torch.Tensor:
    array = np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images])
    tensor = torch.from_numpy(array).permute(0, 3, 1, 2)
    return (tensor - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def image_relevance(model: clip_model.CLIP, image: torch.Tensor, tokens: torch.Tensor,
                    start_layer: int) -> torch.Tensor:
    """Image relevance maps [K, G, G] of one image [1, 3, R, R] for K prompts, vision layers from
    `start_layer` on (-1: the last only).

    The notebook pairs image i with text i in a batch and back-propagates the sum of the paired
    logits; each copy's gradient then only holds its own prompt's term, as here."""
    count = tokens.shape[0]
    images = image.expand(count, -1, -1, -1)
    image_features, attentions = model.encode_image(images, return_attention=True)
    text_features = model.encode_text(tokens)
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    logits = model.logit_scale.exp() * (image_features * text_features).sum(dim=-1)
    relevance = make_reference_models.rollout(logits.sum(), attentions, start_layer)
    grid = round((relevance.shape[-1] - 1) ** 0.5)
    return relevance[:, 0, 1:].reshape(count, grid, grid).detach()


def upsample(maps: torch.Tensor, resolution: int) -> torch.Tensor:
    """As the notebook: bilinear interpolation by the patch size, then min-max normalisation."""
    up = F.interpolate(maps.unsqueeze(1), scale_factor=resolution // maps.shape[-1], mode="bilinear")[:, 0]
    low = up.flatten(1).min(dim=1).values.view(-1, 1, 1)
    high = up.flatten(1).max(dim=1).values.view(-1, 1, 1)
    return (up - low) / (high - low + 1e-12)


class Evaluator:
    def __init__(self, model: clip_model.CLIP, tokenizer: learn_bpe.SimpleTokenizer, mean, std,
                 atlas: render_scenes.EmojiAtlas, start_layer: int = -1):
        self.model, self.tokenizer, self.mean, self.std, self.atlas = model, tokenizer, mean, std, atlas
        self.start_layer = start_layer
        self.resolution = model.visual.input_resolution

    def scenes(self, family: str, count: int):
        return held_out_scenes(self.atlas, family, count, self.resolution)

    def measure(self, scenes) -> Dict[str, float]:
        model = self.model.eval()
        names = emoji_concepts.NAMES
        with torch.no_grad():
            all_text = model.encode_text(self.tokenizer.tokenize(names, model.context_length, trim=True))
            all_text = all_text / all_text.norm(dim=-1, keepdim=True)
        hits = {"pointing": 0, "pointing_mask": 0, "pointing_patch": 0, "top1_absent": 0, "top1_prompts": 0}
        total = 0
        for seed, scene in scenes:
            image = to_tensor([scene.image], self.mean, self.std)
            present = [o.concept for o in scene.objects]
            tokens = self.tokenizer.tokenize(present, model.context_length, trim=True)
            maps = image_relevance(model, image, tokens, self.start_layer)
            up = upsample(maps, self.resolution)
            with torch.no_grad():
                features = model.encode_image(image)
                scores = (features / features.norm(dim=-1, keepdim=True)) @ all_text.t()
            absent = [i for i, n in enumerate(names) if n not in present]
            best_absent = scores[0, absent].max().item()
            listed_absent = [emoji_concepts.INDEX[n] for n in scene_prompts(scene, seed)[len(present):]]
            best_listed_absent = scores[0, listed_absent].max().item()
            grid = maps.shape[-1]
            patch = self.resolution // grid
            for k, obj in enumerate(scene.objects):
                x0, y0, x1, y1 = obj.box
                peak = int(up[k].flatten().argmax())
                py, px = divmod(peak, self.resolution)
                hits["pointing"] += x0 <= px < x1 and y0 <= py < y1
                hits["pointing_mask"] += bool(obj.mask[py, px])
                cell = int(maps[k].flatten().argmax())
                cy, cx = (cell // grid + 0.5) * patch, (cell % grid + 0.5) * patch
                hits["pointing_patch"] += x0 <= cx < x1 and y0 <= cy < y1
                own_score = scores[0, emoji_concepts.INDEX[obj.concept]].item()
                hits["top1_absent"] += own_score > best_absent
                hits["top1_prompts"] += own_score > best_listed_absent
                total += 1
        model.train()
        return {k: v / total for k, v in hits.items()} | {"objects": total}


def evaluate_archive(path: str, count: int) -> Tuple[Dict[str, Dict[str, float]], int]:
    """Metrics per family, and the vision start layer used (the archive's relevance_start_layer)."""
    model, config, vocab = clip_model.load_archive(path)
    tokenizer = learn_bpe.SimpleTokenizer(vocab)
    evaluator = Evaluator(model, tokenizer, config.get("image_mean", clip_model.OPENAI_IMAGE_MEAN),
                          config.get("image_std", clip_model.OPENAI_IMAGE_STD), render_scenes.EmojiAtlas(),
                          config.get("relevance_start_layer", -1))
    results = {}
    for family in ("held_out", "independent"):
        start = time.time()
        results[family] = evaluator.measure(evaluator.scenes(family, count)) | {"scenes": count}
        print(family, json.dumps(results[family]), f"({time.time() - start:.0f} s)", flush=True)
    return results, evaluator.start_layer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("archive")
    parser.add_argument("--scenes", type=int, default=300, help="scenes per family")
    parser.add_argument("--card", help="model card JSON whose \"metrics\" to fill in (other metrics kept)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results, start_layer = evaluate_archive(args.archive, args.scenes)
    if args.card:
        layers = "last vision layer only" if start_layer == -1 else f"vision layers {start_layer} to last"
        card_metrics.update_card_metrics(args.card, {
            "method": f"Chefer relevance, {layers} (the archive's default), CLS row "
                      "(Python reference, scripts/eval_model.py)",
            "held_out_2_to_4_objects": results["held_out"],
            "independent_layouts_backgrounds": results["independent"],
        })


if __name__ == "__main__":
    main()
