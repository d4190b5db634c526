"""Writes tests/data/model/<stem>.methods.json: every explanation method's maps on the random-weight
archives of make_reference_models.py, computed independently in PyTorch from the papers and the
authors' code, for the C++ methods to be compared against (tests/methods_test.cpp).

Each method is written here as its authors' code runs it, not as the C++ side does: the image
repeated once per prompt (or one prompt at a time), the whole tower with autograd, one
torch.autograd.grad per layer where the authors call it so, at the full context length.
  rollout     Chefer et al.'s compute_rollout_attention (Transformer-Explainability), as
              Grad-ECLIP's generate_emap.py reuses it for CLIP.
  attention   the last layer's class-token (EOT) attention row, mean over heads (Grad-ECLIP's
              self_attn).
  gradcam     pytorch-grad-cam's GradCAM with its CLIP example's target layer (the last block's
              layer_norm1) and reshape_transform, one image and one target per call; the model's
              output is the softmax over the prompts (target "probability") or the logits.
  legrad      WalBouss/LeGrad compute_legrad_clip, the image repeated per prompt (its commented
              `image.repeat(num_prompts, 1, 1, 1)`), one autograd.grad per layer.
  grad-eclip  Cyang-Zhao/Grad-Eclip grad_eclip_image.ipynb / grad_eclip_text.ipynb: the last n blocks
              with attention_layer(q, k, v, 1), one prompt at a time; the text's q.k min-max over
              the slots up to the EOT (the notebook: all context slots, padding included).
  chefer2021  only its contrastive form here (make_reference_models.py holds the plain one).
Contrast cases explain logit(prompt) - logit(contrast) (cosines for legrad and grad-eclip, whose
authors differentiate the cosine).

    /usr/bin/python3 scripts/reference_methods.py            # after make_reference_models.py
"""

import argparse
import glob
import json
import math
import os
import sys
from typing import Dict, List, Optional

import numpy
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_model  # noqa: E402
import make_reference_models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- one residual block, written out so that its parts can be read or differentiated ---------

def block_forward(block, x, mask, heads: Optional[int] = None, hooks: Optional[Dict] = None):
    """x [B, N, W] -> [B, N, W]. `heads` None: the block's own. `hooks` receives normed, q, k, v,
    probs and attn_output (before out_proj), and may replace normed/probs by returning them."""
    hooks = hooks if hooks is not None else {}
    batch, length, width = x.shape
    heads = heads or block.attn.heads
    normed = block.ln_1(x)
    if "on_normed" in hooks:
        normed = hooks["on_normed"](normed)
    q, k, v = F.linear(normed, block.attn.in_proj_weight, block.attn.in_proj_bias).chunk(3, dim=-1)
    head_dim = width // heads
    split = [t.reshape(batch, length, heads, head_dim).transpose(1, 2) for t in (q, k, v)]
    scores = (split[0] * head_dim ** -0.5) @ split[1].transpose(-2, -1)
    if mask is not None:
        scores = scores + mask
    probs = scores.softmax(dim=-1)
    if "on_probs" in hooks:
        probs = hooks["on_probs"](probs)
    attn_output = (probs @ split[2]).transpose(1, 2).reshape(batch, length, width)
    hooks.update(q=q, k=k, v=v, probs=probs, attn_output=attn_output, normed=normed)
    x = x + block.attn.out_proj(attn_output)
    return x + block.mlp(block.ln_2(x))


def image_tokens(model, image):
    return model.visual.embed(image)


def image_features(model, tokens):
    return model.visual.ln_post(tokens[:, 0]) @ model.visual.proj


def text_forward(model, ids, start=0, blocks_hooks=None, heads=None):
    """Token states through the text tower's blocks, full context; returns final states."""
    length = ids.shape[1]
    x = model.token_embedding(ids) + model.positional_embedding[:length]
    mask = model.causal_mask(length, x.device)
    for index, block in enumerate(model.transformer.resblocks):
        hooks = blocks_hooks.get(index) if blocks_hooks else None
        x = block_forward(block, x, mask, heads if hooks is not None else None, hooks)
    return x


def text_features_of(model, ids, states):
    eot = ids.argmax(dim=-1)
    return model.ln_final(states)[torch.arange(ids.shape[0]), eot] @ model.text_projection


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def normalised_tokens(row, eot):
    tokens = row[1:eot]
    total = tokens.sum()
    return (tokens / total if total > 0 else tokens).tolist()


# --- the methods -------------------------------------------------------------------------------

def all_attentions(model, image, ids):
    with torch.no_grad():
        _, vision = model.encode_image(image.unsqueeze(0), return_attention=True)
        _, text = model.encode_text(ids, return_attention=True)
    return vision, text


def rollout(model, image, ids, start_layer, start_layer_text):
    vision, text = all_attentions(model, image, ids)

    def joint(attentions, start):
        start = len(attentions) - 1 if start == -1 else start
        kept = [a.mean(dim=1) for a in attentions[start:]]  # avg over heads
        eye = torch.eye(kept[0].shape[-1]).expand_as(kept[0])
        augmented = [(a + eye) / (a + eye).sum(dim=-1, keepdim=True) for a in kept]
        result = augmented[0]
        for matrix in augmented[1:]:
            result = matrix.bmm(result)
        return result

    image_map = joint(vision, start_layer)[0, 0, 1:]
    text_joint = joint(text, start_layer_text)
    eot = ids.argmax(dim=-1)
    grid = round(math.sqrt(image_map.numel()))
    return {"grids": [image_map.reshape(grid, grid).tolist()] * ids.shape[0],
            "text_relevance": [normalised_tokens(text_joint[p, eot[p]], eot[p])
                               for p in range(ids.shape[0])]}


def attention(model, image, ids):
    vision, text = all_attentions(model, image, ids)
    image_map = vision[-1].mean(dim=1)[0, 0, 1:]
    grid = round(math.sqrt(image_map.numel()))
    eot = ids.argmax(dim=-1)
    last = text[-1].mean(dim=1)
    return {"grids": [image_map.reshape(grid, grid).tolist()] * ids.shape[0],
            "text_relevance": [normalised_tokens(last[p, eot[p]], eot[p])
                               for p in range(ids.shape[0])]}


def gradcam(model, image, ids, target, contrast_ids=None):
    with torch.no_grad():
        texts = unit(model.encode_text(ids))
        contrast = unit(model.encode_text(contrast_ids)) if contrast_ids is not None else None
    grids = []
    for prompt in range(ids.shape[0]):
        captured = {}

        def keep(normed):
            normed.retain_grad()
            captured["activations"] = normed
            return normed

        x = image_tokens(model, image.unsqueeze(0))
        blocks = model.visual.transformer.resblocks
        for index, block in enumerate(blocks):
            x = block_forward(block, x, None, None, {"on_normed": keep} if index == len(blocks) - 1 else None)
        features = unit(image_features(model, x))
        logits = model.logit_scale.exp() * features @ texts.t()  # [1, P]
        output = logits.softmax(dim=-1) if target == "probability" else logits
        score = output[0, prompt]
        if contrast is not None:
            score = score - model.logit_scale.exp() * (features @ contrast.t())[0, 0]
        model.zero_grad()
        score.backward()
        activations = captured["activations"][:, 1:]
        grads = captured["activations"].grad[:, 1:]
        grid = round(math.sqrt(activations.shape[1]))
        # reshape_transform: [1, N-1, C] -> [1, C, G, G]; weights = mean over (2, 3)
        activations = activations.reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        grads = grads.reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        weights = grads.mean(dim=(2, 3))
        cam = (weights[:, :, None, None] * activations).sum(dim=1)
        grids.append(cam.clamp(min=0)[0].tolist())
    return {"grids": grids, "text_relevance": None}


def legrad(model, image, ids, layer_index, contrast_ids=None):
    prompts = ids.shape[0]
    with torch.no_grad():
        text_embedding = unit(model.encode_text(ids))
        contrast = unit(model.encode_text(contrast_ids)) if contrast_ids is not None else None
    blocks = model.visual.transformer.resblocks
    starting_depth = layer_index if layer_index >= 0 else len(blocks) + layer_index
    images = image.unsqueeze(0).repeat(prompts, 1, 1, 1)
    x = image_tokens(model, images)
    feats, maps = [], []
    for index, block in enumerate(blocks):
        hooks = {}
        x = block_forward(block, x, None, None, hooks)
        if index >= starting_depth:
            feats.append(x)
            maps.append(hooks["probs"])
    accumulated = 0
    for feat, attn_map in zip(feats, maps):
        img_feat = F.normalize(model.visual.ln_post(feat.mean(dim=1)) @ model.visual.proj, dim=-1)
        sim = text_embedding @ img_feat.transpose(-1, -2)  # [P, P]
        one_hot = torch.sum(torch.eye(prompts) * sim)
        if contrast is not None:
            one_hot = one_hot - (img_feat @ contrast.t()).sum()
        grad = torch.autograd.grad(one_hot, [attn_map], retain_graph=True)[0]
        grad = torch.clamp(grad, min=0.0)
        accumulated = accumulated + grad.mean(dim=1).mean(dim=1)[:, 1:]
    grid = round(math.sqrt(accumulated.shape[-1]))
    return {"grids": accumulated.reshape(prompts, grid, grid).tolist(), "text_relevance": None}


def grad_eclip(model, image, ids, layers, text_layers, contrast_ids=None):
    with torch.no_grad():
        text_embedding = unit(model.encode_text(ids))
        real_image = unit(model.encode_image(image.unsqueeze(0)))
        contrast = unit(model.encode_text(contrast_ids)) if contrast_ids is not None else None
    blocks = model.visual.transformer.resblocks
    # clip_encode_dense(x, n): the last n blocks with attention_layer(q, k, v, 1)
    x = image_tokens(model, image.unsqueeze(0))
    tapped = []
    for index, block in enumerate(blocks):
        single = index >= len(blocks) - layers
        hooks = {} if single else None
        x = block_forward(block, x, None, 1 if single else None, hooks)
        if single:
            tapped.append(hooks)
    embedding = F.normalize(image_features(model, x), dim=-1)
    cosines = (embedding @ text_embedding.t())[0]
    grids = []
    for prompt in range(ids.shape[0]):
        c = cosines[prompt]
        if contrast is not None:
            c = c - (embedding @ contrast.t())[0, 0]
        tmp_maps = []
        for hooks in tapped:
            grad = torch.autograd.grad(c, hooks["attn_output"], retain_graph=True)[0]
            grad_cls = grad[0, :1, :]
            q_cls = F.normalize(hooks["q"][0, :1, :], dim=-1)
            k_patch = F.normalize(hooks["k"][0, 1:, :], dim=-1)
            cosine_qk = (q_cls * k_patch).sum(-1)
            cosine_qk = (cosine_qk - cosine_qk.min()) / (cosine_qk.max() - cosine_qk.min())
            tmp_maps.append((grad_cls * hooks["v"][0, 1:, :] * cosine_qk[:, None]).sum(-1))
        emap = F.relu(torch.stack(tmp_maps, dim=0)).sum(0)
        grid = round(math.sqrt(emap.numel()))
        grids.append(emap.reshape(grid, grid).detach().tolist())

    text_relevance = []
    text_blocks = len(model.transformer.resblocks)
    for prompt in range(ids.shape[0]):
        row = ids[prompt:prompt + 1]
        eos = int(row.argmax(dim=-1))
        hooks_by_block = {index: {} for index in range(text_blocks - text_layers, text_blocks)}
        states = text_forward(model, row, blocks_hooks=hooks_by_block, heads=1)
        c = (real_image @ unit(text_features_of(model, row, states)).t())[0, 0]
        tmp_maps = []
        for hooks in hooks_by_block.values():
            grad = torch.autograd.grad(c, hooks["attn_output"], retain_graph=True)[0]
            grad_eos = grad[0, eos, :]
            q_eos = F.normalize(hooks["q"][0, eos, :], dim=-1)
            keys = F.normalize(hooks["k"][0, :eos + 1, :], dim=-1)
            cosine_qk = (q_eos * keys).sum(-1)
            cosine_qk = (cosine_qk - cosine_qk.min()) / (cosine_qk.max() - cosine_qk.min())
            tmp_maps.append((grad_eos * hooks["v"][0, :eos + 1, :] * cosine_qk[:, None]).sum(-1))
        emap = F.relu(torch.stack(tmp_maps, dim=0).sum(0))
        text_relevance.append(normalised_tokens(emap.detach(), eos))
    return {"grids": grids, "text_relevance": text_relevance}


def chefer2021_contrast(model, image, ids, start_layer, start_layer_text, contrast_ids):
    """make_reference_models.interpret with the score logit(prompt) - logit(contrast)."""
    batch = ids.shape[0]
    images = image.unsqueeze(0).repeat(batch, 1, 1, 1)
    image_feats, image_attentions = model.encode_image(images, return_attention=True)
    text_feats, text_attentions = model.encode_text(ids, return_attention=True)
    with torch.no_grad():
        contrast = unit(model.encode_text(contrast_ids))
    image_feats = unit(image_feats)
    logits = model.logit_scale.exp() * image_feats @ unit(text_feats).t()
    score = (torch.eye(batch) * logits).sum() - (model.logit_scale.exp() * image_feats @ contrast.t()).sum()
    image_relevance = make_reference_models.rollout(score, image_attentions, start_layer)[:, 0, 1:]
    text_relevance = make_reference_models.rollout(score, text_attentions, start_layer_text)
    grid = round(math.sqrt(image_relevance.shape[-1]))
    eot = ids.argmax(dim=-1)
    return {"grids": image_relevance.reshape(batch, grid, grid).tolist(),
            "text_relevance": [normalised_tokens(text_relevance[p, eot[p]], eot[p])
                               for p in range(batch)]}


# --- the cases ---------------------------------------------------------------------------------

def cases_for(model, image, ids, contrast_ids, layers: int) -> List[Dict]:
    """(method, parameters, contrast?, maps) for one image."""
    middle = layers // 2
    runs = [
        ("rollout", {}, False, lambda: rollout(model, image, ids, 0, 0)),
        ("rollout", {"start_layer": middle, "start_layer_text": -1}, False,
         lambda: rollout(model, image, ids, middle, -1)),
        ("attention", {}, False, lambda: attention(model, image, ids)),
        ("gradcam", {}, False, lambda: gradcam(model, image, ids, "probability")),
        ("gradcam", {"target": "logit"}, False, lambda: gradcam(model, image, ids, "logit")),
        ("gradcam", {"target": "logit"}, True,
         lambda: gradcam(model, image, ids, "logit", contrast_ids)),
        ("legrad", {}, False, lambda: legrad(model, image, ids, -2)),
        ("legrad", {"layer_index": 0}, False, lambda: legrad(model, image, ids, 0)),
        ("legrad", {}, True, lambda: legrad(model, image, ids, -2, contrast_ids)),
        ("grad-eclip", {}, False, lambda: grad_eclip(model, image, ids, 1, 1)),
        ("grad-eclip", {"layers": 2, "text_layers": 2}, False,
         lambda: grad_eclip(model, image, ids, 2, 2)),
        ("grad-eclip", {}, True, lambda: grad_eclip(model, image, ids, 1, 1, contrast_ids)),
        ("chefer2021", {"start_layer": 0, "start_layer_text": 0}, True,
         lambda: chefer2021_contrast(model, image, ids, 0, 0, contrast_ids)),
    ]
    cases = []
    for method, parameters, contrasted, run in runs:
        case = {"method": method, "parameters": parameters, "contrast": contrasted}
        case.update(run())
        cases.append(case)
    return cases


def contrast_prompt(reference: Dict, vocabulary: Optional[bytes]) -> Dict:
    context = reference["config"]["context_length"]
    if vocabulary is not None:
        tokenizer = make_reference_models.learn_bpe.SimpleTokenizer(vocabulary)
        return {"text": "a boy", "ids": tokenizer.tokenize(["a boy"], context)[0].tolist()}
    vocab_size = reference["config"]["vocab_size"]
    generator = torch.Generator().manual_seed(77)
    tokens = torch.randint(0, vocab_size - 2, (4,), generator=generator).tolist()
    ids = [vocab_size - 2] + tokens + [vocab_size - 1]
    return {"text": "contrast prompt", "ids": ids + [0] * (context - len(ids))}


def write_methods_reference(reference_path: str) -> None:
    directory = os.path.dirname(reference_path)
    with open(reference_path) as f:
        reference = json.load(f)
    model, _, vocabulary = clip_model.load_archive(os.path.join(directory, reference["archive"]))
    model = model.float().eval()
    resolution = reference["config"]["input_resolution"]
    images = torch.from_numpy(numpy.fromfile(os.path.join(directory, reference["images"]),
                                             dtype="<f4").copy()).reshape(-1, 3, resolution, resolution)
    ids = torch.tensor([p["ids"] for p in reference["prompts"]])
    contrast = contrast_prompt(reference, vocabulary)
    contrast_ids = torch.tensor([contrast["ids"]])
    cases = []
    for index in range(images.shape[0]):
        for case in cases_for(model, images[index], ids, contrast_ids,
                              reference["config"]["vision_layers"]):
            case["image"] = index
            cases.append(case)
    out = reference_path.replace(".reference.json", ".methods.json")
    with open(out, "w") as f:
        json.dump({"reference": os.path.basename(reference_path), "contrast": contrast,
                   "cases": cases}, f)
        f.write("\n")
    print(f"{out}: {len(cases)} cases")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=os.path.join(REPO, "tests", "data", "model"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    for path in sorted(glob.glob(os.path.join(args.dir, "*.reference.json"))):
        write_methods_reference(path)


if __name__ == "__main__":
    main()
