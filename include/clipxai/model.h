// CLIP ViT models: loading from TorchScript archives and the two encoders, in LibTorch (fp32).
//
// Archive layout (what OpenAI's released ViT files are, and what the project's own exporters
// write): a TorchScript archive (traced or scripted) whose parameters, buffers or tensor
// attributes carry OpenAI's names —
//   visual.conv1.weight [W,3,P,P] (no bias), visual.class_embedding [W],
//   visual.positional_embedding [G*G+1,W], visual.ln_pre.{weight,bias} [W],
//   visual.transformer.resblocks.N.{ln_1.{weight,bias} [W], attn.in_proj_weight [3W,W],
//     attn.in_proj_bias [3W], attn.out_proj.{weight [W,W], bias [W]}, ln_2.{weight,bias} [W],
//     mlp.c_fc.{weight [M,W], bias [M]}, mlp.c_proj.{weight [W,M], bias [W]}},
//   visual.ln_post.{weight,bias} [W], visual.proj [W,E],
//   token_embedding.weight [V,Wt], positional_embedding [C,Wt], transformer.resblocks.N.* (as the
//   visual blocks, width Wt), ln_final.{weight,bias} [Wt], text_projection [Wt,E], logit_scale [].
// Weights may be fp16 or fp32; they are converted to fp32. Unknown extra entries
// (input_resolution, context_length, vocab_size, ...) are ignored. The architecture is inferred
// from shapes as OpenAI's build_model does: W from conv1, P from its kernel, G from the
// positional embedding, layers by counting resblocks, E from text_projection, C and V from the
// text embeddings, heads = width / 64, resolution = P * G. Optional extra files (stored with
// torch.jit.save's _extra_files):
//   config.json   {"name", "vision_heads", "text_heads", "activation": "quick_gelu"|"gelu",
//                  "image_mean": [3], "image_std": [3], "relevance_start_layer",
//                  "relevance_start_layer_text"} — overrides what shapes cannot tell;
//                  every key is optional, unknown keys are ignored. The two start layers are
//                  the rollout depth the model's makers chose (relevance.h's convention: -1 =
//                  the last layer only, 0 = all, N = from layer N); absent, as in OpenAI's
//                  archives, they are -1, the authors' notebook's default;
//   bpe_simple_vocab_16e6.txt.gz — the tokenizer vocabulary that travels with the model, in
//                  OpenAI's format; its first V - 514 merges are used.
//
// Encoders (OpenAI CLIP semantics, pre-LayerNorm residual blocks, LayerNorm eps 1e-5):
//   image: conv1 patches, class token first, + positional embedding, ln_pre, blocks,
//          ln_post of the class token, @ proj;
//   text:  token + positional embedding, causal blocks, ln_final of the EOT token (the position
//          of the highest id), @ text_projection;
//   logit = exp(logit_scale) * cosine(image features, text features).
// The blocks themselves (with attention probabilities kept for relevance) run in relevance.cpp
// through the weights exposed here.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/types.h>

namespace clipxai {

enum class Activation { QuickGelu, Gelu };

struct ModelConfig {
  std::string name;  // from config.json, else the archive's file stem
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
  // The rollout depth used when the caller does not choose one (RelevanceOptions).
  int relevance_start_layer = -1;
  int relevance_start_layer_text = -1;
};

std::string to_string(Activation activation);

// One pre-LayerNorm residual attention block: x += attn(ln_1(x)); x += mlp(ln_2(x)).
// Views into the model's fp32 weights; q/kv split attn.in_proj_* into its query rows [0, W) and
// its key+value rows [W, 3W), so keys and values can be computed for all tokens while queries
// are computed only for the rows that are needed.
struct ResidualBlockWeights {
  torch::Tensor ln_1_weight, ln_1_bias;
  torch::Tensor q_weight, q_bias;    // [W, W], [W]
  torch::Tensor kv_weight, kv_bias;  // [2W, W], [2W]
  torch::Tensor out_weight, out_bias;
  torch::Tensor ln_2_weight, ln_2_bias;
  torch::Tensor fc_weight, fc_bias;
  torch::Tensor proj_weight, proj_bias;
};

struct TransformerWeights {
  std::vector<ResidualBlockWeights> blocks;
  int heads = 0;
  bool causal = false;  // the text tower: token i attends to tokens <= i
  Activation activation = Activation::QuickGelu;
};

class ClipModel {
 public:
  // Throws Error(Model) naming the file: missing, not a TorchScript archive, truncated, missing
  // parameters (named), inconsistent shapes, a bad config.json, or a ResNet CLIP (not supported).
  static ClipModel load(const std::string& path);

  const std::string& path() const { return path_; }
  const ModelConfig& config() const { return config_; }
  // The gzip'd BPE vocabulary embedded in the archive, if any.
  const std::optional<std::string>& embedded_vocabulary() const { return embedded_vocabulary_; }
  // A parameter by its OpenAI name, as fp32. Throws Error(Model) if absent.
  const torch::Tensor& weight(const std::string& name) const;
  // Moves all weights to `device` ("cpu", "cuda", "cuda:1", ...).
  void to(const torch::Device& device);
  torch::Device device() const;

  const TransformerWeights& vision_transformer() const { return vision_; }
  const TransformerWeights& text_transformer() const { return text_; }
  double logit_scale() const;  // exp(logit_scale)

  // The pieces around the transformers. `pixels` [B, 3, R, R] normalised -> token states
  // [B, G*G+1, W] after ln_pre, class token first.
  torch::Tensor embed_image(const torch::Tensor& pixels) const;
  // `ids` [B, T] int64, T <= context length -> token states [B, T, Wt].
  torch::Tensor embed_text(const torch::Tensor& ids) const;
  // Final class-token states [B, W] -> image features [B, E] (ln_post, proj).
  torch::Tensor project_image(const torch::Tensor& class_states) const;
  // Final EOT-token states [B, Wt] -> text features [B, E] (ln_final, text_projection).
  torch::Tensor project_text(const torch::Tensor& eot_states) const;

  // Plain forward passes without autograd (features are not normalised).
  torch::Tensor encode_image(const torch::Tensor& pixels) const;  // [B, 3, R, R] -> [B, E]
  torch::Tensor encode_text(const torch::Tensor& ids) const;      // [B, T] int64 -> [B, E]

 private:
  void bind_weights();

  std::string path_;
  ModelConfig config_;
  std::optional<std::string> embedded_vocabulary_;
  std::unordered_map<std::string, torch::Tensor> weights_;
  TransformerWeights vision_;
  TransformerWeights text_;
};

}  // namespace clipxai
