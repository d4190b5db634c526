// CLIP ViT models: loading from TorchScript archives and the two encoders, in LibTorch (fp32).
//
// Archive layout (what OpenAI's released ViT files are, and what the project's own exporters
// write): a TorchScript archive whose parameters and buffers carry OpenAI's names —
//   visual.conv1.weight [W,3,P,P], visual.class_embedding [W], visual.positional_embedding [G*G+1,W],
//   visual.ln_pre.{weight,bias}, visual.transformer.resblocks.N.{ln_1,attn.in_proj_weight,
//   attn.in_proj_bias,attn.out_proj,ln_2,mlp.c_fc,mlp.c_proj}.*, visual.ln_post.*, visual.proj [W,E],
//   token_embedding.weight [V,Wt], positional_embedding [C,Wt], transformer.resblocks.N.*,
//   ln_final.*, text_projection [Wt,E], logit_scale [].
// Weights may be fp16 or fp32; they are converted to fp32. Unknown extra entries
// (input_resolution, context_length, vocab_size, ...) are ignored. The architecture is inferred
// from shapes as OpenAI's build_model does (heads = width / 64). Optional extra files:
//   config.json   {"name", "vision_heads", "text_heads", "activation": "quick_gelu"|"gelu",
//                  "image_mean": [3], "image_std": [3]} — overrides what shapes cannot tell;
//   bpe_simple_vocab_16e6.txt.gz — the tokenizer vocabulary that travels with the model.
#pragma once

#include <array>
#include <optional>
#include <unordered_map>
#include <string>
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
};

std::string to_string(Activation activation);

class ClipModel {
 public:
  // Throws Error(Model) naming the file: not a TorchScript archive, truncated, missing parameters
  // (named), inconsistent shapes, or a ResNet CLIP (not supported).
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

 private:
  std::string path_;
  ModelConfig config_;
  std::optional<std::string> embedded_vocabulary_;
  std::unordered_map<std::string, torch::Tensor> weights_;
};

}  // namespace clipxai
