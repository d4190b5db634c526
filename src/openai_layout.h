// Internal: OpenAI's CLIP ViT parameter names (the layout of OpenAI's released files) mapped onto
// model.h's typed weights, with the architecture inferred from the shapes as OpenAI's build_model
// does, and the optional config.json that says what shapes cannot tell. Shared by every reader of
// a file that holds OpenAI's names.
//
// Names, with model.h's symbols —
//   visual.conv1.weight [W,3,P,P] (no bias), visual.class_embedding [W],
//   visual.positional_embedding [G*G+1,W], visual.ln_pre.{weight,bias} [W],
//   visual.transformer.resblocks.N.{ln_1.{weight,bias} [W], attn.in_proj_weight [3W,W],
//     attn.in_proj_bias [3W], attn.out_proj.{weight [W,W], bias [W]}, ln_2.{weight,bias} [W],
//     mlp.c_fc.{weight [M,W], bias [M]}, mlp.c_proj.{weight [W,M], bias [W]}},
//   visual.ln_post.{weight,bias} [W], visual.proj [W,E],
//   token_embedding.weight [V,Wt], positional_embedding [C,Wt], transformer.resblocks.N.* (as the
//   visual blocks, width Wt), ln_final.{weight,bias} [Wt], text_projection [Wt,E], logit_scale [].
// Unknown extra entries (input_resolution, context_length, vocab_size, ...) are ignored. Inferred:
// W from conv1, P from its kernel, G from the positional embedding, layers by counting resblocks,
// E from text_projection, C and V from the text embeddings, heads = width / 64, resolution =
// P * G.
// config.json {"name", "vision_heads", "text_heads", "activation": "quick_gelu"|"gelu",
//              "image_mean": [3], "image_std": [3], "relevance_start_layer",
//              "relevance_start_layer_text"} — every key optional, unknown keys ignored; the two
//              start layers are the model's MethodDefaults.
#pragma once

#include <string>
#include <unordered_map>

#include <torch/types.h>

#include "clipxai/checkpoint.h"

namespace clipxai {

using NamedTensors = std::unordered_map<std::string, torch::Tensor>;

// `tensors`: fp32 contiguous CPU tensors by OpenAI name; `config_json`: config.json's text, or
// empty. Throws Error(Model) naming `path` (and config.json) for missing parameters, inconsistent
// shapes, a bad config.json, heads that do not divide the width, or a ResNet CLIP.
Checkpoint checkpoint_from_openai_names(const std::string& path, const NamedTensors& tensors,
                                        const std::string& config_json);

}  // namespace clipxai
