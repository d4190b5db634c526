"""A CLIP ViT in pure PyTorch with OpenAI's exact parameter names, and its TorchScript exporter.

The module tree and parameter names/shapes are those of openai/CLIP's model.py (ViT variant), so
an exported archive is read by the same C++ loader as OpenAI's released files (see
include/clipxai/model.h). Attention is written out by hand instead of calling
nn.MultiheadAttention so that the softmax probabilities of every layer can be returned and
differentiated against, which is what Chefer et al.'s relevance needs. Tensors are batch-first
inside (OpenAI uses sequence-first); that changes no parameter.

    model = CLIP(embed_dim=256, image_resolution=224, vision_layers=6, vision_width=256,
                 vision_patch_size=32, context_length=32, vocab_size=2514,
                 transformer_width=256, transformer_heads=4, transformer_layers=4)
    features, attentions = model.encode_image(images, return_attention=True)
    # attentions[i]: [B, heads, N, N] softmax probabilities of layer i, part of the autograd graph.
    save_archive(model, "m.pt", {"name": "m", "activation": "quick_gelu"}, vocab_gz, half=False)
"""

import copy
import io
import json
import math
from collections import OrderedDict
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

OPENAI_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
VOCAB_FILE_NAME = "bpe_simple_vocab_16e6.txt.gz"


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 whatever the input dtype, as OpenAI's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        orig_type = x.dtype
        ret = super().forward(x.type(torch.float32))
        return ret.type(orig_type)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention with nn.MultiheadAttention's parameter names and layout."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = width // heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """x: [B, N, W]; mask: additive [N, N] or None. Returns (output [B, N, W], probs [B, H, N, N])."""
        batch, length, width = x.shape
        head_dim = self.head_dim
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = [t.reshape(batch, length, self.heads, head_dim).transpose(1, 2) for t in (q, k, v)]
        scores = (q * (1.0 / math.sqrt(head_dim))) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask.to(scores.dtype)
        probs = scores.softmax(dim=-1)
        out = (probs @ v).transpose(1, 2).reshape(batch, length, width)
        return self.out_proj(out), probs


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, activation: str):
        super().__init__()
        self.attn = Attention(width, heads)
        self.ln_1 = LayerNorm(width)
        act = QuickGELU() if activation == "quick_gelu" else nn.GELU()
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", act),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = LayerNorm(width)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        attended, probs = self.attn(self.ln_1(x), mask)
        x = x + attended
        x = x + self.mlp(self.ln_2(x))
        return x, probs


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, activation: str):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, activation) for _ in range(layers)])

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        attentions = []
        for block in self.resblocks:
            x, probs = block(x, mask)
            attentions.append(probs)
        return x, attentions


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution: int, patch_size: int, width: int, layers: int, heads: int,
                 output_dim: int, activation: str):
        super().__init__()
        if input_resolution % patch_size != 0:
            raise ValueError(f"resolution {input_resolution} is not a multiple of patch {patch_size}")
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        grid = input_resolution // patch_size
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, activation)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        x, attentions = self.transformer(self.embed(x), None)
        return self.ln_post(x[:, 0, :]) @ self.proj, attentions

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, R, R] -> token states [B, 1 + G*G, W] after ln_pre, class token first."""
        x = self.conv1(x)  # [B, W, G, G]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, G*G, W]
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype,
                                                             device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.ln_pre(x)


class CLIP(nn.Module):
    """OpenAI's CLIP (ViT image tower), constructor arguments in OpenAI's order."""

    def __init__(self, embed_dim: int, image_resolution: int, vision_layers: int, vision_width: int,
                 vision_patch_size: int, context_length: int, vocab_size: int, transformer_width: int,
                 transformer_heads: int, transformer_layers: int, vision_heads: Optional[int] = None,
                 activation: str = "quick_gelu"):
        super().__init__()
        if activation not in ("quick_gelu", "gelu"):
            raise ValueError(f"activation must be quick_gelu or gelu, got {activation}")
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.image_resolution = image_resolution
        self.activation = activation
        self.vision_heads = vision_heads if vision_heads is not None else vision_width // 64
        self.text_heads = transformer_heads
        self.visual = VisionTransformer(image_resolution, vision_patch_size, vision_width, vision_layers,
                                        self.vision_heads, embed_dim, activation)
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads, activation)
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self):
        """OpenAI's initialisation."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        for tower in (self.transformer, self.visual.transformer):
            proj_std = (tower.width ** -0.5) * ((2 * tower.layers) ** -0.5)
            attn_std = tower.width ** -0.5
            fc_std = (2 * tower.width) ** -0.5
            for block in tower.resblocks:
                nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
                nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
                nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
                nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=self.transformer.width ** -0.5)

    def causal_mask(self, length: int, device: torch.device) -> torch.Tensor:
        return torch.full((length, length), float("-inf"), device=device).triu_(1)

    def architecture(self) -> dict:
        visual = self.visual
        return {
            "embed_dim": visual.output_dim,
            "image_resolution": visual.input_resolution,
            "vision_layers": visual.transformer.layers,
            "vision_width": visual.transformer.width,
            "vision_patch_size": visual.conv1.kernel_size[0],
            "vision_heads": self.vision_heads,
            "context_length": self.context_length,
            "vocab_size": self.vocab_size,
            "transformer_width": self.transformer.width,
            "transformer_heads": self.text_heads,
            "transformer_layers": self.transformer.layers,
            "activation": self.activation,
            "parameters": sum(p.numel() for p in self.parameters()),
        }

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    def encode_image(self, image: torch.Tensor, return_attention: bool = False):
        """image: [B, 3, R, R] normalised. Returns features [B, E] (and the per-layer probs)."""
        features, attentions = self.visual(image.type(self.dtype))
        return (features, attentions) if return_attention else features

    def encode_image_and_patches(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Image features [B, E] and dense patch features [B, G*G, E] from one pass of the tower.
        Dense features as MaskCLIP reads them: each patch's value in the last block through
        out_proj, ln_post and proj, the path by which a patch reaches the class token."""
        visual = self.visual
        x = visual.embed(image.type(self.dtype))
        blocks = visual.transformer.resblocks
        for block in blocks[:-1]:
            x, _ = block(x, None)
        last = blocks[-1]
        out, _ = last(x, None)
        features = visual.ln_post(out[:, 0]) @ visual.proj
        width = x.shape[-1]
        values = F.linear(last.ln_1(x[:, 1:]), last.attn.in_proj_weight[2 * width:],
                          last.attn.in_proj_bias[2 * width:])
        return features, visual.ln_post(last.attn.out_proj(values)) @ visual.proj

    def encode_text(self, text: torch.Tensor, return_attention: bool = False):
        """text: [B, L] token ids, EOT the highest id, L <= context_length. Returns features [B, E]
        (and probs). The causal mask makes padding after EOT irrelevant, so a batch may be cut to
        its longest prompt (much faster in training) and gives the same features as length C."""
        length = text.shape[1]
        x = self.token_embedding(text).type(self.dtype) + self.positional_embedding[:length].type(self.dtype)
        x, attentions = self.transformer(x, self.causal_mask(x.shape[1], x.device))
        x = self.ln_final(x).type(self.dtype)
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return (x, attentions) if return_attention else x

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


def build_model(**architecture) -> CLIP:
    """CLIP from the keys `architecture()` returns (the "parameters" entry is ignored)."""
    architecture = {k: v for k, v in architecture.items() if k != "parameters"}
    return CLIP(**architecture)


def convert_weights_to_half(model: nn.Module) -> None:
    """As clip.model.convert_weights: linear/conv/attention weights and projections to fp16;
    LayerNorms, embeddings, class/positional embeddings and logit_scale stay fp32."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.weight.data = module.weight.data.half()
            if module.bias is not None:
                module.bias.data = module.bias.data.half()
        if isinstance(module, Attention):
            module.in_proj_weight.data = module.in_proj_weight.data.half()
            module.in_proj_bias.data = module.in_proj_bias.data.half()
    for name in ("text_projection", "proj"):
        for module in model.modules():
            param = getattr(module, name, None)
            if isinstance(param, nn.Parameter):
                param.data = param.data.half()


def save_archive(model: CLIP, path: str, config: dict, vocab_gz_bytes: Optional[bytes], half: bool) -> None:
    """Writes `model` as a TorchScript archive in the layout include/clipxai/model.h documents.

    The module is traced in fp32 (CPU has no fp16 matmul); with half=True the weights are then
    converted as OpenAI's released files are, and the scalar buffers input_resolution,
    context_length and vocab_size are added as in OpenAI's jit archives."""
    export = copy.deepcopy(model).float().eval()
    for param in export.parameters():
        param.requires_grad_(False)
    resolution = export.visual.input_resolution
    example_image = torch.zeros(1, 3, resolution, resolution)
    example_text = torch.zeros(1, export.context_length, dtype=torch.long)
    example_text[0, 0] = export.vocab_size - 2
    example_text[0, 1] = export.vocab_size - 1
    if half:
        for name, value in (("input_resolution", resolution), ("context_length", export.context_length),
                            ("vocab_size", export.vocab_size)):
            if hasattr(export, name):
                delattr(export, name)  # the plain int attribute becomes a buffer of the same name
            export.register_buffer(name, torch.tensor(value))
    traced = torch.jit.trace(export, (example_image, example_text), check_trace=False)
    if half:
        # Converting the traced module's tensors in place keeps the names and changes only dtypes.
        converted = copy.deepcopy(export)
        convert_weights_to_half(converted)
        converted_state = converted.state_dict()
        for name in traced.state_dict():
            owner_path, _, leaf = name.rpartition(".")
            owner = traced.get_submodule(owner_path) if owner_path else traced
            owner._c.setattr(leaf, converted_state[name].data)
    extra_files = {"config.json": json.dumps(config, indent=2)}
    if vocab_gz_bytes is not None:
        extra_files[VOCAB_FILE_NAME] = vocab_gz_bytes
    torch.jit.save(traced, path, _extra_files=extra_files)


def load_archive(path: str, map_location: str = "cpu") -> Tuple[CLIP, dict, Optional[bytes]]:
    """Reads an archive written by save_archive (or OpenAI's ViT jit files) back into a CLIP
    (fp32), with its config.json (empty if absent) and embedded vocabulary bytes (or None)."""
    extra_files = {"config.json": "", VOCAB_FILE_NAME: ""}
    scripted = torch.jit.load(path, map_location=map_location, _extra_files=extra_files)
    state = {k: v.float() for k, v in scripted.state_dict().items()
             if k not in ("input_resolution", "context_length", "vocab_size")}
    config = json.loads(extra_files["config.json"]) if extra_files["config.json"] else {}
    vocab = extra_files[VOCAB_FILE_NAME]
    vocab_bytes = (vocab if isinstance(vocab, bytes) else vocab.encode("latin-1")) if vocab else None
    vision_width = state["visual.conv1.weight"].shape[0]
    patch = state["visual.conv1.weight"].shape[-1]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    transformer_width = state["ln_final.weight"].shape[0]
    model = CLIP(
        embed_dim=state["text_projection"].shape[1],
        image_resolution=patch * grid,
        vision_layers=len({k.split(".")[3] for k in state if k.startswith("visual.transformer.resblocks.")}),
        vision_width=vision_width,
        vision_patch_size=patch,
        context_length=state["positional_embedding"].shape[0],
        vocab_size=state["token_embedding.weight"].shape[0],
        transformer_width=transformer_width,
        transformer_heads=config.get("text_heads", transformer_width // 64),
        transformer_layers=len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")}),
        vision_heads=config.get("vision_heads", vision_width // 64),
        activation=config.get("activation", "quick_gelu"),
    )
    model.load_state_dict(state)
    return model, config, vocab_bytes
