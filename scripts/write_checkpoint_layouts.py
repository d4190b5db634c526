"""Writes one random-weight CLIP in every checkpoint layout clipxai reads, from the same weights.

The weights are rounded to fp16 once, so the fp16 and fp32 files hold the same numbers and every
layout must give the same logits and maps (tests/cli/checkpoint_layouts.sh checks that through
`clipxai explain`). The model has what a reader could get wrong: GELU rather than QuickGELU,
its own image mean and std, and 2 heads where OpenAI's rule (width / 64) would give none.

Layouts written to the output directory (default tests/data/layouts/):
  openai_fp16.pt           OpenAI's TorchScript layout, fp16 as OpenAI's released files, with
                           config.json and the vocabulary embedded (clip_model.save_archive)
  openai_fp16_deflated.pt  the same archive re-packed with every record deflated, as a zip tool
                           writes it (PyTorch stores records uncompressed; clipxai reads those in
                           place and inflates the others)
  hf/                      a transformers CLIPModel folder: config.json, model.safetensors (fp32,
                           with the position_ids buffers older transformers saved),
                           preprocessor_config.json, vocab.json, merges.txt
  hf_fp16/                 the same with fp16 safetensors
  hf_sharded/              model.safetensors.index.json and two shards
  hf_bin/                  pytorch_model.bin (torch.save of the state dict, an OrderedDict)
  open_clip/               open_clip_config.json, open_clip_model.safetensors, vocab.json,
                           merges.txt, as open_clip's hub exports hold them
  open_clip_bin/           open_clip_config.json and open_clip_pytorch_model.bin
  state_dict.safetensors   a bare state dict of OpenAI's names, with state_dict.config.json for
                           --model-config

The transformers names follow transformers' own code, checked against
src/transformers/models/clip/modeling_clip.py (CLIPModel: vision_model, text_model,
visual_projection and text_projection as nn.Linear without bias, logit_scale;
CLIPVisionTransformer: embeddings.{class_embedding, patch_embedding, position_embedding},
pre_layrnorm — so spelt — encoder.layers.N, post_layernorm; CLIPTextTransformer:
embeddings.{token_embedding, position_embedding}, encoder.layers.N, final_layer_norm;
CLIPEncoderLayer: self_attn.{q,k,v,out}_proj, layer_norm1, mlp.{fc1, fc2}, layer_norm2) and
convert_clip_original_pytorch_to_hf.py (in_proj split into q, k, v by chunk(3); the projections
transposed). config.json's keys are CLIPConfig's, CLIPTextConfig's and CLIPVisionConfig's;
preprocessor_config.json's CLIPImageProcessor's. The safetensors files are written here by the
format's specification (huggingface/safetensors: an 8-byte little-endian header length, the JSON
header padded with spaces to 8 bytes, the data), as the safetensors package is not installed.
The vocabulary files are built from the merge list as transformers' CLIP conversion holds
OpenAI's: vocab.json is OpenAI's encoder (byte tokens, byte + "</w>" tokens, one per merge,
<|startoftext|>, <|endoftext|>), merges.txt a "#version: 0.2" line and the merges.

    /usr/bin/python3 scripts/write_checkpoint_layouts.py
    /usr/bin/python3 scripts/write_checkpoint_layouts.py --vocab-from FILE.txt.gz --out DIR
        (only vocab.json and merges.txt made from that merge list)
"""

import argparse
import collections
import gzip
import json
import os
import struct
import sys
import zipfile
from typing import Dict, List, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_model  # noqa: E402
import learn_bpe  # noqa: E402
import make_reference_models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ARCHITECTURE = dict(embed_dim=16, image_resolution=32, vision_layers=2, vision_width=16,
                    vision_patch_size=8, context_length=16, vocab_size=None, transformer_width=16,
                    transformer_heads=2, transformer_layers=2, vision_heads=2, activation="gelu")
IMAGE_MEAN = [0.5, 0.45, 0.4]
IMAGE_STD = [0.25, 0.3, 0.2]
NAME = "layouts-tiny"

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.int64: "I64"}


# --- vocabulary -------------------------------------------------------------------------------

def merges_of(vocab_gz: bytes) -> List[Tuple[str, str]]:
    lines = gzip.decompress(vocab_gz).decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    return [tuple(line.split()) for line in lines if line]


def hf_vocabulary(vocab_gz: bytes, num_merges: int) -> Tuple[str, str]:
    """vocab.json and merges.txt for a model using the first `num_merges` merges."""
    merges = merges_of(vocab_gz)[:num_merges]
    tokens = list(learn_bpe.bytes_to_unicode().values())
    tokens += [t + "</w>" for t in tokens]
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    merges_txt = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    return json.dumps(vocab, ensure_ascii=False), merges_txt


def write_vocabulary(directory: str, vocab_json: str, merges_txt: str) -> None:
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        f.write(vocab_json)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write(merges_txt)


# --- tensor files -----------------------------------------------------------------------------

def write_safetensors(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        data = tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else \
            tensor.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def write_torch_save(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    torch.save(collections.OrderedDict(sorted(tensors.items())), path)


# --- transformers' layout ---------------------------------------------------------------------

def hf_state_dict(openai: Dict[str, torch.Tensor], position_ids: bool) -> Dict[str, torch.Tensor]:
    hf = {
        "vision_model.embeddings.class_embedding": openai["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": openai["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": openai["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": openai["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": openai["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": openai["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": openai["visual.ln_post.bias"],
        "visual_projection.weight": openai["visual.proj"].t(),
        "text_model.embeddings.token_embedding.weight": openai["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": openai["positional_embedding"],
        "text_model.final_layer_norm.weight": openai["ln_final.weight"],
        "text_model.final_layer_norm.bias": openai["ln_final.bias"],
        "text_projection.weight": openai["text_projection"].t(),
        "logit_scale": openai["logit_scale"],
    }
    for openai_prefix, hf_prefix in (("visual.transformer.resblocks.", "vision_model.encoder.layers."),
                                     ("transformer.resblocks.", "text_model.encoder.layers.")):
        layers = {int(k[len(openai_prefix):].split(".")[0]) for k in openai if k.startswith(openai_prefix)}
        for layer in sorted(layers):
            o, h = f"{openai_prefix}{layer}.", f"{hf_prefix}{layer}."
            q, k, v = openai[o + "attn.in_proj_weight"].chunk(3, dim=0)
            qb, kb, vb = openai[o + "attn.in_proj_bias"].chunk(3, dim=0)
            hf.update({
                h + "self_attn.q_proj.weight": q, h + "self_attn.q_proj.bias": qb,
                h + "self_attn.k_proj.weight": k, h + "self_attn.k_proj.bias": kb,
                h + "self_attn.v_proj.weight": v, h + "self_attn.v_proj.bias": vb,
                h + "self_attn.out_proj.weight": openai[o + "attn.out_proj.weight"],
                h + "self_attn.out_proj.bias": openai[o + "attn.out_proj.bias"],
                h + "layer_norm1.weight": openai[o + "ln_1.weight"],
                h + "layer_norm1.bias": openai[o + "ln_1.bias"],
                h + "mlp.fc1.weight": openai[o + "mlp.c_fc.weight"],
                h + "mlp.fc1.bias": openai[o + "mlp.c_fc.bias"],
                h + "mlp.fc2.weight": openai[o + "mlp.c_proj.weight"],
                h + "mlp.fc2.bias": openai[o + "mlp.c_proj.bias"],
                h + "layer_norm2.weight": openai[o + "ln_2.weight"],
                h + "layer_norm2.bias": openai[o + "ln_2.bias"],
            })
    if position_ids:
        context = openai["positional_embedding"].shape[0]
        tokens = openai["visual.positional_embedding"].shape[0]
        hf["text_model.embeddings.position_ids"] = torch.arange(context).unsqueeze(0)
        hf["vision_model.embeddings.position_ids"] = torch.arange(tokens).unsqueeze(0)
    return {name: tensor.contiguous() for name, tensor in hf.items()}


def hf_config(arch: Dict, vocab_size: int) -> Dict:
    text = {"hidden_size": arch["transformer_width"], "intermediate_size": 4 * arch["transformer_width"],
            "num_attention_heads": arch["transformer_heads"],
            "num_hidden_layers": arch["transformer_layers"],
            "max_position_embeddings": arch["context_length"], "vocab_size": vocab_size,
            "hidden_act": arch["activation"], "layer_norm_eps": 1e-05, "projection_dim": arch["embed_dim"],
            "bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": 1,
            "model_type": "clip_text_model"}
    vision = {"hidden_size": arch["vision_width"], "intermediate_size": 4 * arch["vision_width"],
              "num_attention_heads": arch["vision_heads"], "num_hidden_layers": arch["vision_layers"],
              "image_size": arch["image_resolution"], "patch_size": arch["vision_patch_size"],
              "num_channels": 3, "hidden_act": arch["activation"], "layer_norm_eps": 1e-05,
              "projection_dim": arch["embed_dim"], "model_type": "clip_vision_model"}
    return {"_name_or_path": NAME, "architectures": ["CLIPModel"], "model_type": "clip",
            "projection_dim": arch["embed_dim"], "logit_scale_init_value": 2.6592,
            "initializer_factor": 1.0, "text_config": text, "vision_config": vision,
            "torch_dtype": "float32", "transformers_version": "4.46.3"}


def hf_preprocessor(arch: Dict) -> Dict:
    size = arch["image_resolution"]
    return {"crop_size": {"height": size, "width": size}, "do_center_crop": True,
            "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
            "image_mean": IMAGE_MEAN, "image_processor_type": "CLIPImageProcessor",
            "image_std": IMAGE_STD, "resample": 3, "rescale_factor": 0.00392156862745098,
            "size": {"shortest_edge": size}}


def write_hf(directory: str, tensors: Dict[str, torch.Tensor], config: Dict, vocabulary,
             weights: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(directory, "preprocessor_config.json"), "w") as f:
        json.dump(hf_preprocessor(ARCHITECTURE), f, indent=2)
    write_vocabulary(directory, *vocabulary)
    if weights == "safetensors":
        write_safetensors(os.path.join(directory, "model.safetensors"), tensors)
    elif weights == "bin":
        write_torch_save(os.path.join(directory, "pytorch_model.bin"), tensors)
    else:  # two shards, as save_pretrained(max_shard_size=...) splits them
        names = sorted(tensors)
        shards = {"model-00001-of-00002.safetensors": names[:len(names) // 2],
                  "model-00002-of-00002.safetensors": names[len(names) // 2:]}
        weight_map = {}
        for shard, shard_names in shards.items():
            write_safetensors(os.path.join(directory, shard), {n: tensors[n] for n in shard_names})
            weight_map.update({n: shard for n in shard_names})
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


# --- open_clip's layout -----------------------------------------------------------------------

def open_clip_config(arch: Dict, vocab_size: int) -> Dict:
    return {
        "model_cfg": {
            "embed_dim": arch["embed_dim"],
            "quick_gelu": arch["activation"] == "quick_gelu",
            "vision_cfg": {"image_size": arch["image_resolution"], "layers": arch["vision_layers"],
                           "width": arch["vision_width"],
                           "head_width": arch["vision_width"] // arch["vision_heads"],
                           "patch_size": arch["vision_patch_size"]},
            "text_cfg": {"context_length": arch["context_length"], "vocab_size": vocab_size,
                         "width": arch["transformer_width"], "heads": arch["transformer_heads"],
                         "layers": arch["transformer_layers"]},
        },
        "preprocess_cfg": {"mean": IMAGE_MEAN, "std": IMAGE_STD, "interpolation": "bicubic",
                           "resize_mode": "shortest"},
    }


def write_open_clip(directory: str, tensors: Dict[str, torch.Tensor], config: Dict, vocabulary,
                    weights: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "open_clip_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if weights == "safetensors":
        write_vocabulary(directory, *vocabulary)
        write_safetensors(os.path.join(directory, "open_clip_model.safetensors"), tensors)
    else:
        write_torch_save(os.path.join(directory, "open_clip_pytorch_model.bin"), tensors)


def write_deflated_copy(source: str, path: str) -> None:
    """`source`, a zip, re-packed with every record deflated, in the same order."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            copy.writestr(info.filename, original.read(info), zipfile.ZIP_DEFLATED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "data", "layouts"))
    parser.add_argument("--vocab-from", metavar="FILE.txt.gz",
                        help="write only vocab.json and merges.txt made from this merge list")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.vocab_from:
        with open(args.vocab_from, "rb") as f:
            write_vocabulary(args.out, *hf_vocabulary(f.read(), 49152 - 256 - 2))
        return

    vocabulary_gz = make_reference_models.tiny_vocabulary()
    vocab_size = learn_bpe.SimpleTokenizer(vocabulary_gz).vocab_size
    arch = dict(ARCHITECTURE, vocab_size=vocab_size)
    model = clip_model.CLIP(**arch)
    make_reference_models.randomise(model, torch.Generator().manual_seed(16))
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(param.half().float())
    openai = {k: v.detach().clone() for k, v in model.state_dict().items()}
    vocabulary = hf_vocabulary(vocabulary_gz, vocab_size - 514)

    config = {"name": NAME, "vision_heads": arch["vision_heads"], "text_heads": arch["transformer_heads"],
              "activation": arch["activation"], "image_mean": IMAGE_MEAN, "image_std": IMAGE_STD}
    clip_model.save_archive(model, os.path.join(args.out, "openai_fp16.pt"), config, vocabulary_gz,
                            half=True)
    write_deflated_copy(os.path.join(args.out, "openai_fp16.pt"),
                        os.path.join(args.out, "openai_fp16_deflated.pt"))

    hf = hf_state_dict(openai, position_ids=True)
    hf_plain = hf_state_dict(openai, position_ids=False)
    hf_cfg = hf_config(arch, vocab_size)
    write_hf(os.path.join(args.out, "hf"), hf, hf_cfg, vocabulary, "safetensors")
    write_hf(os.path.join(args.out, "hf_fp16"), {k: v.half() for k, v in hf_plain.items()},
             dict(hf_cfg, torch_dtype="float16"), vocabulary, "safetensors")
    write_hf(os.path.join(args.out, "hf_sharded"), hf_plain, hf_cfg, vocabulary, "sharded")
    write_hf(os.path.join(args.out, "hf_bin"), hf_plain, hf_cfg, vocabulary, "bin")

    oc_cfg = open_clip_config(arch, vocab_size)
    write_open_clip(os.path.join(args.out, "open_clip"), openai, oc_cfg, vocabulary, "safetensors")
    write_open_clip(os.path.join(args.out, "open_clip_bin"), openai, oc_cfg, vocabulary, "bin")

    write_safetensors(os.path.join(args.out, "state_dict.safetensors"), openai)
    with open(os.path.join(args.out, "state_dict.config.json"), "w") as f:
        json.dump({k: v for k, v in config.items() if k != "name"}, f, indent=2)
    for root, _, files in sorted(os.walk(args.out)):
        for name in sorted(files):
            path = os.path.join(root, name)
            print(f"{os.path.relpath(path, args.out)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
