// CLIP ViT models: the architecture facts, the typed fp32 weights the forward passes use, and the
// pieces of the two encoders around their transformer blocks, in LibTorch.
//
// A model is loaded from a checkpoint (checkpoint.h: one reader per file format turns a file into
// a ModelConfig and ClipWeights); nothing here knows any format's parameter names.
//
// Weights, with W the vision width, Wt the text width, P the patch size, G the grid (patches per
// side), E the embedding width, C the context length, V the vocabulary size, M a block's MLP width:
//   vision: conv1 [W,3,P,P] (no bias), class_embedding [W], positional_embedding [G*G+1,W],
//           ln_pre [W], blocks, ln_post [W], proj [W,E];
//   text:   token_embedding [V,Wt], positional_embedding [C,Wt], causal blocks, ln_final [Wt],
//           projection [Wt,E];
//   logit_scale [] (the logarithm; logit_scale() returns its exponential).
// Each block (pre-LayerNorm residual: x += attn(ln_1(x)); x += mlp(ln_2(x))) holds its attention
// input projection split into the query rows [W,W] and the key+value rows [2W,W], so keys and
// values can be computed for all tokens while queries are computed only for the rows needed.
//
// Encoders (OpenAI CLIP semantics, LayerNorm eps 1e-5):
//   image: conv1 patches, class token first, + positional embedding, ln_pre, blocks,
//          ln_post of the class token, @ proj;
//   text:  token + positional embedding, causal blocks, ln_final of the end-of-text token (its
//          slot comes from the tokenizer: TokenizedText::eot_index), @ projection;
//   logit = exp(logit_scale) * cosine(image features, text features).
// The blocks themselves, with attention probabilities kept for the explanation methods, run in
// trace.cpp over the weights exposed here.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "clipxai/tokenizer.h"

namespace clipxai {

enum class Activation { QuickGelu, Gelu };

struct ModelConfig {
  std::string name;  // from the checkpoint's own config, else the file's stem
  int input_resolution = 0;
  int patch_size = 0;
  int grid = 0;  // patches per side
  int vision_width = 0;
  int vision_layers = 0;
  int vision_heads = 0;
  int embed_dim = 0;
  int context_length = 0;
  int vocab_size = 0;
  int text_width = 0;
  int text_layers = 0;
  int text_heads = 0;
  Activation activation = Activation::QuickGelu;
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};
};

std::string to_string(Activation activation);

// What the model's makers chose for the explanation methods, read from the checkpoint: not
// architecture, but defaults a method uses when the caller chooses nothing (chefer2021's rollout
// depth, in relevance.h's convention: -1 = the last layer only, 0 = all, N = from layer N).
struct MethodDefaults {
  int relevance_start_layer = -1;
  int relevance_start_layer_text = -1;
};

// The one range rule for start layers: -1 (the last layer only) up to layers - 1.
bool is_valid_start_layer(int64_t start_layer, int layers);

struct ResidualBlockWeights {
  torch::Tensor ln_1_weight, ln_1_bias;  // [W]
  torch::Tensor q_weight, q_bias;        // [W, W], [W]
  torch::Tensor kv_weight, kv_bias;      // [2W, W], [2W]
  torch::Tensor out_weight, out_bias;    // [W, W], [W]
  torch::Tensor ln_2_weight, ln_2_bias;  // [W]
  torch::Tensor fc_weight, fc_bias;      // [M, W], [M]
  torch::Tensor proj_weight, proj_bias;  // [W, M], [W]
};

struct TransformerWeights {
  std::vector<ResidualBlockWeights> blocks;
  int heads = 0;
  bool causal = false;  // the text tower: token i attends to tokens <= i
  Activation activation = Activation::QuickGelu;
};

struct VisionWeights {
  torch::Tensor conv1, class_embedding, positional_embedding;
  torch::Tensor ln_pre_weight, ln_pre_bias;
  TransformerWeights transformer;
  torch::Tensor ln_post_weight, ln_post_bias;
  torch::Tensor proj;
};

struct TextWeights {
  torch::Tensor token_embedding, positional_embedding;
  TransformerWeights transformer;
  torch::Tensor ln_final_weight, ln_final_bias;
  torch::Tensor projection;
};

struct ClipWeights {
  VisionWeights vision;
  TextWeights text;
  torch::Tensor logit_scale;
};

// Applies `change` to every tensor of `weights`, replacing each with the result.
void transform_tensors(ClipWeights& weights,
                       const std::function<torch::Tensor(const torch::Tensor&)>& change);

// How to read a checkpoint, beyond its path.
struct LoadOptions {
  // A JSON file of the facts shapes cannot tell (the keys of an OpenAI-layout config.json:
  // src/openai_layout.h), for a checkpoint in OpenAI's layout (openai-torchscript, state-dict);
  // its keys win over the checkpoint's own. Empty: none. A checkpoint with a configuration of
  // its own layout (hf-transformers, open-clip) refuses it.
  std::string model_config;
};

class ClipModel {
 public:
  // Reads `path` (a file or a folder) with the checkpoint reader for its format (checkpoint.h).
  // Throws Error(Model) naming it: missing, of no format clipxai reads, truncated, missing
  // parameters (named), inconsistent shapes, a bad configuration, or an architecture clipxai does
  // not support.
  static ClipModel load(const std::string& path, const LoadOptions& options = {});

  const std::string& path() const { return path_; }
  const std::string& format() const { return format_; }  // the reader's name (checkpoint.h)
  const ModelConfig& config() const { return config_; }
  const MethodDefaults& method_defaults() const { return method_defaults_; }
  // The tokenizer's files that travel with the model, if any.
  const std::optional<VocabularyFiles>& embedded_vocabulary() const { return embedded_vocabulary_; }
  // Where each fact of the configuration came from (Checkpoint::fact_sources).
  const std::map<std::string, std::string>& fact_sources() const { return fact_sources_; }
  const ClipWeights& weights() const { return weights_; }
  // A copy of this model with other weights of the same shapes (e.g. some re-initialised).
  ClipModel with_weights(ClipWeights weights) const;
  // Moves all weights to `device` ("cpu", "cuda", "cuda:1", ...).
  void to(const torch::Device& device);
  torch::Device device() const;

  const TransformerWeights& vision_transformer() const { return weights_.vision.transformer; }
  const TransformerWeights& text_transformer() const { return weights_.text.transformer; }
  double logit_scale() const;  // exp(logit_scale)

  // The pieces around the transformers. `pixels` [B, 3, R, R] normalised -> token states
  // [B, G*G+1, W] after ln_pre, class token first.
  torch::Tensor embed_image(const torch::Tensor& pixels) const;
  // `ids` [B, T] int64, T <= context length -> token states [B, T, Wt]. Throws Error(Input) for
  // ids outside the vocabulary.
  torch::Tensor embed_text(const torch::Tensor& ids) const;
  // Final class-token states [B, W] -> image features [B, E] (ln_post, proj).
  torch::Tensor project_image(const torch::Tensor& class_states) const;
  // Final EOT-token states [B, Wt] -> text features [B, E] (ln_final, projection).
  torch::Tensor project_text(const torch::Tensor& eot_states) const;

  // Plain forward passes without autograd (features are not normalised).
  torch::Tensor encode_image(const torch::Tensor& pixels) const;  // [B, 3, R, R] -> [B, E]
  // `ids` [B, T] int64 with the end-of-text slot of each row in `eot` [B] -> [B, E].
  torch::Tensor encode_text(const torch::Tensor& ids, const torch::Tensor& eot) const;
  torch::Tensor encode_text(const std::vector<TokenizedText>& prompts) const;

 private:
  std::string path_;
  std::string format_;
  ModelConfig config_;
  MethodDefaults method_defaults_;
  std::optional<VocabularyFiles> embedded_vocabulary_;
  std::map<std::string, std::string> fact_sources_;
  ClipWeights weights_;
};

}  // namespace clipxai
