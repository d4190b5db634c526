// Chefer, Gur & Wolf 2021 relevance for CLIP (arXiv 2103.15679), as the authors' CLIP notebook.
//
// For one image and P prompts: score_p = exp(logit_scale) * cos(image, text_p). For each attention
// layer l >= start layer: Abar = mean over heads of ReLU(d score_p / d A_l  (.)  A_l), where A_l is
// the softmax attention probability; R <- R + Abar . R, from R = I.
//   image map        = R[CLS, patches], a grid x grid map (row-major, top row first)
//   text relevance   = R[EOT, tokens strictly between SOT and EOT] / its sum
// Start layers: -1 (default) = the last layer only, as the notebook; 0 = every layer; N = from N.
// All gradients of both towers come from one backward pass over all P prompts.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "clipxai/model.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

struct RelevanceOptions {
  int start_layer = -1;       // vision tower; -1 = last layer only; 0 = all layers
  int start_layer_text = -1;  // text tower; same convention
};

struct PromptRelevance {
  double logit = 0;        // exp(logit_scale) * cosine
  double cosine = 0;
  double probability = 0;  // softmax of the logits over this image's prompts
  torch::Tensor grid;      // [grid, grid] float32 on CPU: raw R[CLS, patches]
  std::vector<float> token_relevance;  // one per token between SOT and EOT, summing to 1
};

// `pixels`: [3, R, R] normalised image (see image.h). Returns one entry per prompt, in order.
// Throws Error(Usage) for a start layer outside the model's layers.
std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const std::vector<TokenizedText>& prompts,
                                           const RelevanceOptions& options);

}  // namespace clipxai
