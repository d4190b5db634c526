"""Writes the small random-weight CLIP archives of tests/data/model/ and their reference outputs.

The reference is an independent PyTorch implementation of the authors' notebook (`interpret` in
Transformer-MM-Explainability's CLIP notebook), run on the archive as read back from disk:
the image is repeated once per prompt, the whole model runs with autograd, and
torch.autograd.grad is called once per kept layer, in fp32 as the notebook. Nothing of the C++
implementation's work-saving is copied.

Files written to the output directory (default tests/data/model/):
  <stem>.pt              the archive (see include/clipxai/model.h for the layout)
  <stem>.images.bin      the test images, float32 little-endian [images, 3, R, R], normalised
  <stem>.reference.json  {"archive", "config" (what the loader must infer), "images",
                          "prompts": [{"text", "ids" (all context slots)}],
                          "image_features": [images][E], "text_features": [prompts][E],
                          "cases": [{"image", "start_layer", "start_layer_text", "logits",
                                     "cosines", "probabilities", "grids" [P][G][G],
                                     "text_relevance" [P][tokens between SOT and EOT]}]}
  broken archives for the loader's error tests (missing_proj.pt, bad_shape.pt, resnet.pt,
  bad_heads.pt, bad_start_layer.pt, state_dict.pt).

tiny_vit.pt embeds a tiny tokenizer vocabulary (merges learned from a few English phrases), so
`clipxai explain --model tests/data/model/tiny_vit.pt IMAGE "a dog"` needs no other file.

    /usr/bin/python3 scripts/make_reference_models.py                 # the committed test data
    /usr/bin/python3 scripts/make_reference_models.py --vit-b32 DIR   # ViT-B/32 size, manual check
"""

import argparse
import io
import json
import math
import os
import sys
from typing import Dict, List, Optional

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_model  # noqa: E402
import learn_bpe  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VOCABULARY_PHRASES = [
    "a photo of a dog", "a photo of a cat", "a dog and a cat", "a girl", "a boy",
    "a desktop computer", "a red apple on a table", "a green tree", "a blue car on the street",
    "a man riding a horse", "a woman holding an umbrella", "two birds flying over the sea",
    "a black and white picture of a house", "the sun in the sky", "a yellow flower",
]
TINY_MERGES = 250

TINY_PROMPTS = ["a dog", "a photo of a cat", "a girl and a boy next to a desktop computer"]


def tiny_vocabulary() -> bytes:
    return learn_bpe.write_vocab(learn_bpe.learn_merges(VOCABULARY_PHRASES, TINY_MERGES))


# Each archive: the architecture (clip_model.CLIP's arguments), config.json (None: none, as
# OpenAI's files), fp16 as OpenAI's released files, whether it embeds the tiny vocabulary, and
# the (vision, text) start layers of the reference cases: default, all layers, a middle layer.
ARCHIVES = [
    {
        "stem": "tiny_vit",
        "architecture": dict(embed_dim=32, image_resolution=32, vision_layers=3, vision_width=32,
                             vision_patch_size=8, context_length=32, vocab_size=None,
                             transformer_width=32, transformer_heads=4, transformer_layers=3,
                             vision_heads=4),
        "config": {"name": "tiny-vit", "vision_heads": 4, "text_heads": 4,
                   "activation": "quick_gelu"},
        "half": False,
        "vocabulary": True,
        "start_layers": [(-1, -1), (0, 0), (1, 1)],
    },
    {
        "stem": "tiny_vit_fp16",
        "architecture": dict(embed_dim=48, image_resolution=24, vision_layers=3, vision_width=64,
                             vision_patch_size=8, context_length=16, vocab_size=520,
                             transformer_width=64, transformer_heads=1, transformer_layers=2),
        "config": None,
        "half": True,
        "vocabulary": False,
        "start_layers": [(-1, -1), (0, 0), (1, -1)],
    },
    {
        "stem": "tiny_vit_grid7_gelu",
        "architecture": dict(embed_dim=24, image_resolution=28, vision_layers=4, vision_width=32,
                             vision_patch_size=4, context_length=20, vocab_size=530,
                             transformer_width=32, transformer_heads=2, transformer_layers=2,
                             vision_heads=2, activation="gelu"),
        "config": {"name": "tiny-vit-grid7", "vision_heads": 2, "text_heads": 2,
                   "activation": "gelu", "image_mean": [0.5, 0.5, 0.5],
                   "image_std": [0.25, 0.25, 0.25], "relevance_start_layer": 1,
                   "relevance_start_layer_text": 0},
        "half": False,
        "vocabulary": False,
        "start_layers": [(-1, -1), (0, 0), (2, 1)],
    },
]

VIT_B32 = {
    "stem": "vit_b32_fp16",
    "architecture": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                         vision_patch_size=32, context_length=77, vocab_size=49408,
                         transformer_width=512, transformer_heads=8, transformer_layers=12),
    "config": None,
    "half": True,
    "vocabulary": False,
    "start_layers": [(-1, -1), (0, 0), (6, 6)],
}


def randomise(model: clip_model.CLIP, generator: torch.Generator) -> None:
    """Gives every parameter a non-trivial value (biases and LayerNorms included, so a mistake in
    any of them shows). Matrices get std 1/sqrt(fan in), so attention scores have unit spread:
    neither uniform nor one-hot attention, hence informative relevance."""
    def normal(tensor, std, mean=0.0):
        with torch.no_grad():
            tensor.copy_(mean + std * torch.randn(tensor.shape, generator=generator))

    for name, param in model.named_parameters():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight",
                            "ln_final.weight")):
            normal(param, 0.1, mean=1.0)
        elif name.endswith("bias"):
            normal(param, 0.1)
        elif name == "positional_embedding":
            normal(param, 0.1)
        elif name == "logit_scale":
            with torch.no_grad():
                param.fill_(math.log(100.0))
        else:
            normal(param, param.shape[-1] ** -0.5 if param.dim() > 1 else 0.1)


def test_images(resolution: int, generator: torch.Generator) -> torch.Tensor:
    """Two normalised images: smooth shapes on a gradient, and noise."""
    coords = torch.linspace(-1, 1, resolution)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    blob = torch.exp(-((x - 0.4) ** 2 + (y + 0.3) ** 2) / 0.1)
    square = ((x + 0.5).abs() < 0.25) & ((y - 0.4).abs() < 0.25)
    shapes = torch.stack([blob + 0.3 * x, square.float() - 0.2 * y, 0.5 * blob * square.float()
                          + 0.3 * (x * y)])
    noise = torch.randn(3, resolution, resolution, generator=generator)
    return torch.stack([(shapes - shapes.mean()) / shapes.std(), noise]).float()


def random_prompts(count: int, vocab_size: int, context_length: int,
                   generator: torch.Generator) -> List[Dict]:
    """Prompts of different lengths as ids only: SOT = V - 2, EOT = V - 1 (the highest id)."""
    prompts = []
    for index in range(count):
        length = min(2 + 3 * index, context_length - 2)
        tokens = torch.randint(0, vocab_size - 2, (length,), generator=generator).tolist()
        ids = [vocab_size - 2] + tokens + [vocab_size - 1]
        prompts.append({"text": f"random prompt {index}", "ids": ids + [0] * (context_length - len(ids))})
    return prompts


def vocabulary_prompts(vocabulary: bytes, context_length: int) -> List[Dict]:
    tokenizer = learn_bpe.SimpleTokenizer(vocabulary)
    ids = tokenizer.tokenize(TINY_PROMPTS, context_length)
    return [{"text": text, "ids": row.tolist()} for text, row in zip(TINY_PROMPTS, ids)]


def rollout(score: torch.Tensor, attentions: List[torch.Tensor], start_layer: int) -> torch.Tensor:
    """The notebook's relevance loop: one autograd.grad per kept layer."""
    if start_layer == -1:
        start_layer = len(attentions) - 1
    batch, _, tokens, _ = attentions[0].shape
    relevance = torch.eye(tokens, dtype=attentions[0].dtype).unsqueeze(0).expand(batch, tokens, tokens)
    for layer, probabilities in enumerate(attentions):
        if layer < start_layer:
            continue
        gradient = torch.autograd.grad(score, [probabilities], retain_graph=True)[0].detach()
        cam = (gradient * probabilities.detach()).clamp(min=0).mean(dim=1)
        relevance = relevance + torch.bmm(cam, relevance)
    return relevance


def interpret(model: clip_model.CLIP, image: torch.Tensor, texts: torch.Tensor, start_layer: int,
              start_layer_text: int) -> Dict:
    """The notebook's `interpret` for one image and a batch of prompts (full context)."""
    batch = texts.shape[0]
    images = image.unsqueeze(0).repeat(batch, 1, 1, 1)
    image_features, image_attentions = model.encode_image(images, return_attention=True)
    text_features, text_attentions = model.encode_text(texts, return_attention=True)
    image_features = image_features / image_features.norm(dim=1, keepdim=True)
    text_features = text_features / text_features.norm(dim=1, keepdim=True)
    logits_per_image = model.logit_scale.exp() * image_features @ text_features.t()
    one_hot = torch.eye(batch, dtype=logits_per_image.dtype)
    score = (one_hot * logits_per_image).sum()

    image_relevance = rollout(score, image_attentions, start_layer)[:, 0, 1:]
    text_relevance = rollout(score, text_attentions, start_layer_text)
    grid = round(math.sqrt(image_relevance.shape[-1]))
    eot = texts.argmax(dim=-1)
    token_relevance = []
    for p in range(batch):
        row = text_relevance[p, eot[p], 1:eot[p]]
        token_relevance.append((row / row.sum()).tolist())
    logits = logits_per_image.diagonal().detach()
    return {
        "start_layer": start_layer,
        "start_layer_text": start_layer_text,
        "logits": logits.tolist(),
        "cosines": (logits / model.logit_scale.exp()).tolist(),
        "probabilities": logits_per_image[0].softmax(dim=-1).tolist(),
        "grids": image_relevance.reshape(batch, grid, grid).tolist(),
        "text_relevance": token_relevance,
    }


def expected_config(spec: Dict, vocab_size: int) -> Dict:
    """What the C++ loader must infer (shapes, then config.json)."""
    arch = spec["architecture"]
    config = spec["config"] or {}
    return {
        "name": config.get("name", spec["stem"]),
        "input_resolution": arch["image_resolution"],
        "patch_size": arch["vision_patch_size"],
        "grid": arch["image_resolution"] // arch["vision_patch_size"],
        "vision_width": arch["vision_width"],
        "vision_layers": arch["vision_layers"],
        "vision_heads": config.get("vision_heads", arch["vision_width"] // 64),
        "embed_dim": arch["embed_dim"],
        "context_length": arch["context_length"],
        "vocab_size": vocab_size,
        "text_width": arch["transformer_width"],
        "text_layers": arch["transformer_layers"],
        "text_heads": config.get("text_heads", arch["transformer_width"] // 64),
        "activation": config.get("activation", "quick_gelu"),
        "image_mean": config.get("image_mean", list(clip_model.OPENAI_IMAGE_MEAN)),
        "image_std": config.get("image_std", list(clip_model.OPENAI_IMAGE_STD)),
        "relevance_start_layer": config.get("relevance_start_layer", -1),
        "relevance_start_layer_text": config.get("relevance_start_layer_text", -1),
        "embedded_vocabulary": spec["vocabulary"],
    }


def write_archive_with_reference(spec: Dict, directory: str, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    vocabulary = tiny_vocabulary() if spec["vocabulary"] else None
    arch = dict(spec["architecture"])
    if vocabulary is not None:
        arch["vocab_size"] = learn_bpe.SimpleTokenizer(vocabulary).vocab_size
    model = clip_model.CLIP(**arch)
    randomise(model, generator)
    path = os.path.join(directory, spec["stem"] + ".pt")
    clip_model.save_archive(model, path, spec["config"] or {}, vocabulary, half=spec["half"])

    # The reference runs on the archive as stored (fp16 weights rounded, read back as fp32).
    stored, _, stored_vocabulary = clip_model.load_archive(path)
    assert stored_vocabulary == vocabulary
    stored.eval()
    resolution, context = arch["image_resolution"], arch["context_length"]
    images = test_images(resolution, generator)
    images.numpy().astype("<f4").tofile(os.path.join(directory, spec["stem"] + ".images.bin"))
    prompts = (vocabulary_prompts(vocabulary, context) if vocabulary is not None
               else random_prompts(3, arch["vocab_size"], context, generator))
    texts = torch.tensor([p["ids"] for p in prompts])
    with torch.no_grad():
        image_features = stored.encode_image(images)
        text_features = stored.encode_text(texts)
    cases = []
    for image_index in range(images.shape[0]):
        for start_layer, start_layer_text in spec["start_layers"]:
            case = interpret(stored, images[image_index], texts, start_layer, start_layer_text)
            case["image"] = image_index
            case["start_layer"], case["start_layer_text"] = start_layer, start_layer_text
            cases.append(case)
    reference = {
        "archive": spec["stem"] + ".pt",
        "images": spec["stem"] + ".images.bin",
        "config": expected_config(spec, arch["vocab_size"]),
        "prompts": prompts,
        "image_features": image_features.tolist(),
        "text_features": text_features.tolist(),
        "cases": cases,
    }
    with open(os.path.join(directory, spec["stem"] + ".reference.json"), "w") as f:
        json.dump(reference, f)
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes, {len(cases)} reference cases")


# --- broken archives for the loader's error tests ---------------------------------------------

class WeightHolder(nn.Module):
    """A TorchScript-able module holding named tensors and nothing else."""

    def forward(self) -> torch.Tensor:
        return torch.zeros(1)


def save_weights(state: Dict[str, torch.Tensor], path: str, config: Optional[Dict]) -> None:
    """An archive with exactly these tensors (as parameters, by dotted name)."""
    root = WeightHolder()
    for name, tensor in state.items():
        owner = root
        *modules, leaf = name.split(".")
        for module_name in modules:
            if not hasattr(owner, module_name):
                owner.add_module(module_name, nn.Module())
            owner = getattr(owner, module_name)
        owner.register_parameter(leaf, nn.Parameter(tensor.clone(), requires_grad=False))
    extra_files = {"config.json": json.dumps(config)} if config is not None else {}
    torch.jit.save(torch.jit.script(root), path, _extra_files=extra_files)


def write_broken_archives(directory: str) -> None:
    torch.manual_seed(0)
    model = clip_model.CLIP(embed_dim=8, image_resolution=8, vision_layers=1, vision_width=16,
                            vision_patch_size=4, context_length=8, vocab_size=520,
                            transformer_width=16, transformer_heads=2, transformer_layers=1,
                            vision_heads=2)
    state = {name: tensor.detach() for name, tensor in model.state_dict().items()}
    heads = {"vision_heads": 2, "text_heads": 2}

    missing_proj = {k: v for k, v in state.items() if k != "visual.proj"}
    save_weights(missing_proj, os.path.join(directory, "missing_proj.pt"), heads)

    bad_shape = dict(state, **{"visual.proj": torch.zeros(17, 8)})
    save_weights(bad_shape, os.path.join(directory, "bad_shape.pt"), heads)

    save_weights(state, os.path.join(directory, "bad_heads.pt"), {"vision_heads": 3, "text_heads": 2})
    save_weights(state, os.path.join(directory, "bad_start_layer.pt"),
                 dict(heads, relevance_start_layer=1))

    # OpenAI's ResNet CLIPs: a convolutional stem, residual layers and an attention pool.
    resnet = {k: v for k, v in state.items() if not k.startswith("visual.")}
    resnet.update({
        "visual.conv1.weight": torch.zeros(8, 3, 3, 3),
        "visual.layer1.0.conv1.weight": torch.zeros(8, 8, 1, 1),
        "visual.attnpool.positional_embedding": torch.zeros(5, 16),
    })
    save_weights(resnet, os.path.join(directory, "resnet.pt"), None)

    # A torch.save'd state dict is a zip file too, but not TorchScript.
    buffer = io.BytesIO()
    torch.save({"visual.proj": state["visual.proj"]}, buffer)
    with open(os.path.join(directory, "state_dict.pt"), "wb") as f:
        f.write(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "data", "model"))
    parser.add_argument("--vit-b32", metavar="DIR",
                        help="write only a ViT-B/32-size fp16 archive and its reference to DIR")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.vit_b32:
        os.makedirs(args.vit_b32, exist_ok=True)
        write_archive_with_reference(VIT_B32, args.vit_b32, seed=32)
        return
    os.makedirs(args.out, exist_ok=True)
    for seed, spec in enumerate(ARCHIVES):
        write_archive_with_reference(spec, args.out, seed)
    write_broken_archives(args.out)


if __name__ == "__main__":
    main()
