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
//              start layers are the model's MethodDefaults. Readers of other layouts state the
//              same facts from their own configuration files (StatedFacts).
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>

#include "clipxai/checkpoint.h"
#include "tensor_file.h"

namespace clipxai {

// What a checkpoint states rather than its shapes show, each set only where stated, with where
// it was stated (`sources`, by the key of report.h's model_json: "vision_heads" ->
// "config.json: \"vision_heads\"").
struct StatedFacts {
  std::optional<std::string> name;
  std::optional<int> vision_heads, text_heads;
  std::optional<Activation> activation;
  std::optional<std::array<float, 3>> image_mean, image_std;
  std::optional<int64_t> relevance_start_layer, relevance_start_layer_text;
  std::map<std::string, std::string> sources;
};

// Applies a config.json of the format above (`text`, from the file `file`) over `facts`. Throws
// Error(Model) "PATH: FILE ..." for text that is not such a JSON object or a key of the wrong
// type.
void apply_config_json(const std::string& path, const std::string& file, const std::string& text,
                       StatedFacts& facts);

// Number of blocks named under `prefix` ("visual.transformer.resblocks."): one more than the
// highest index after it.
int count_blocks(const NamedTensors& tensors, const std::string& prefix);

// Applies LoadOptions::model_config (the file's text, named by its path) over `facts`, if given.
void apply_model_config(const std::string& path, const LoadOptions& options, StatedFacts& facts);

// For readers of layouts with configuration files of their own: an Error(Model) when
// LoadOptions::model_config is given, naming `own_config`, the file that holds those facts.
void refuse_model_config(const std::string& path, const LoadOptions& options,
                         const std::string& own_config);

// `tensors`: fp32 contiguous CPU tensors by OpenAI name. Throws Error(Model) naming `path` for
// missing parameters, inconsistent shapes, a start layer or heads that do not fit the shapes, or
// a ResNet CLIP. Fills Checkpoint::fact_sources: "shapes" for what the shapes show, the stated
// source, or "default: ..." for the rest.
Checkpoint checkpoint_from_openai_names(const std::string& path, const NamedTensors& tensors,
                                        const StatedFacts& facts);

}  // namespace clipxai
