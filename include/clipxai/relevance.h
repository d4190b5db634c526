// Chefer, Gur & Wolf 2021 relevance for CLIP (arXiv 2103.15679), as the authors' CLIP notebook.
//
// For one image and P prompts: score_p = exp(logit_scale) * cos(image, text_p). For each attention
// layer l >= start layer: Abar = mean over heads of ReLU(d score_p / d A_l  (.)  A_l), where A_l is
// the softmax attention probability; R <- R + Abar . R, from R = I.
//   image map        = R[CLS, patches], a grid x grid map (row-major, top row first)
//   text relevance   = R[EOT, tokens strictly between SOT and EOT] / its sum
// Start layers: -1 = the last layer only, the notebook's default; 0 = every layer; N = from N.
// Unset, they are the model's (ModelConfig::relevance_start_layer*, which is -1 unless the
// archive's config.json chooses otherwise: OpenAI's archives give the notebook's numbers).
// EOT is the position of a prompt's highest id, as OpenAI's encode_text.
// All gradients of both towers come from one backward pass over all P prompts. Results equal the
// notebook's (which repeats the image per prompt through the whole model) while doing less work:
// layers before the start layer run once without autograd (the vision tower once per image, the
// text tower once per set of prompts: see PreparedPrompts), the last layer computes only the
// class-token / EOT rows, and the text tower runs only up to the longest EOT of the batch. Runs
// on the model's device; results come back on the CPU.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "clipxai/model.h"
#include "clipxai/timings.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

struct RelevanceOptions {
  std::optional<int> start_layer;       // vision tower; -1 = last layer only; 0 = all layers
  std::optional<int> start_layer_text;  // text tower; same convention
};

// The first block of each tower that the rollout keeps (0-based), for `options` on a model with
// `config`. Throws Error(Usage) for a start layer outside the model's layers.
struct StartLayers {
  int vision = 0;
  int text = 0;
};
StartLayers resolve_start_layers(const RelevanceOptions& options, const ModelConfig& config);
// Layers [start_layer, layers) in words: "last layer (5)", "all layers (0-5)", "layers 3-5".
std::string describe_layers(int start_layer, int layers);

struct PromptRelevance {
  double logit = 0;  // exp(logit_scale) * cosine
  double cosine = 0;
  double probability = 0;  // softmax of the logits over this image's prompts
  torch::Tensor grid;      // [grid, grid] float32 on CPU: raw R[CLS, patches]
  // One per token between SOT and EOT, summing to 1 (all zero if no token has any relevance).
  std::vector<float> token_relevance;
};

// The part of explaining that does not depend on the image, for reuse across many images with
// the same prompts and options: the prompts' token states after the text blocks before the start
// layer (computed once, without autograd). Tied to the model (and its device) it was made with.
struct PreparedPrompts {
  int start_layer = 0;        // resolved: the first kept vision block
  int start_layer_text = 0;   // resolved: the first kept text block
  torch::Tensor eot;          // [P] int64, slot of each prompt's EOT
  torch::Tensor text_states;  // [P, longest EOT + 1, Wt] after text blocks [0, start_layer_text)
};

// `prompts`: each with at most the model's context length of ids. `timings`, when given, is
// charged with the text phase.
// Throws Error(Usage) for no prompts or a start layer outside the model's layers, Error(Input)
// for a prompt that does not fit the model (too long, ids outside its vocabulary).
PreparedPrompts prepare_prompts(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                                const RelevanceOptions& options, Timings* timings = nullptr);

// `pixels`: [3, R, R] normalised image (see image.h). Returns one entry per prompt, in order.
// `timings`, when given, is charged with the vision, text and relevance phases (timings.h).
std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const PreparedPrompts& prompts,
                                           Timings* timings = nullptr);

// One image: prepare_prompts, then explain_image. Throws as prepare_prompts.
std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const std::vector<TokenizedText>& prompts,
                                           const RelevanceOptions& options);

}  // namespace clipxai
