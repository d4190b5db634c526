// Explaining at the tensor level: one normalised image against prompts, with any method
// (method.h), to scores, raw maps and token relevances. The session (engine.h) wraps this for
// decoded images; tests and benchmarks call it directly.
//
// For one image and P prompts: logit_p = exp(logit_scale) * cos(image, text_p); probability_p the
// softmax of the logits over the P prompts; the grid the method's raw map; the token relevance
// the method's, over the tokens strictly between SOT and EOT, normalised to sum 1.
// Results come back on the CPU.
//
// chefer2021 (the default method; Chefer, Gur & Wolf 2021, arXiv 2103.15679, as the authors' CLIP
// notebook): for each attention layer l >= the start layer, Abar = mean over heads of
// ReLU(d logit_p / d A_l  (.)  A_l), with A_l the softmax attention probability;
// R <- R + Abar . R from R = I; image map = R[CLS, patches], text relevance = R[EOT, tokens].
// Its parameters: start_layer, start_layer_text — -1 = the last layer only, the notebook's
// default; 0 = every layer; N = from N. Unset, they are the model's (MethodDefaults, -1 unless the
// checkpoint chooses otherwise: OpenAI's files give the notebook's numbers). Results equal the
// notebook's (which repeats the image per prompt through the whole model) while doing less work
// (trace.h).
//
// Memory: the prompts are traced in chunks of at most kPromptsPerTrace, one after another, so an
// image's memory does not grow with the number of prompts (a zero-shot run over 1,000 class
// names needs no more than one over 32). Each prompt's score and gradients are its own, so the
// results do not depend on the chunking; the softmax that needs every prompt (the probabilities,
// gradcam's probability target) is taken over the whole set.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "clipxai/method.h"
#include "clipxai/model.h"
#include "clipxai/timings.h"
#include "clipxai/tokenizer.h"
#include "clipxai/trace.h"

namespace clipxai {

struct PromptRelevance {
  double logit = 0;  // exp(logit_scale) * cosine
  double cosine = 0;
  double probability = 0;  // softmax of the logits over this image's prompts
  torch::Tensor grid;      // [grid, grid] float32 on CPU: the method's raw map
  // Whether the method defines token relevance; when it does, one value per token between SOT
  // and EOT, summing to 1 (all zero if no token has any relevance).
  bool has_token_relevance = true;
  std::vector<float> token_relevance;
};

// The part of explaining that does not depend on the image, for reuse across many images with
// the same prompts and method. Tied to the model (and its device) it was made with.
inline constexpr size_t kPromptsPerTrace = 32;

struct PreparedPrompts {
  std::shared_ptr<const Method> method;
  // The prompts in order, in near-equal chunks of at most prompts_per_trace (kPromptsPerTrace).
  std::vector<PreparedText> chunks;
};

// Throws Error(Usage) naming `contrast` when `method` cannot explain against it
// (Method::refuses_contrast).
void check_contrast(const Method& method, const TokenizedText& contrast);

// With `contrast` each map explains logit(prompt) - logit(contrast) (trace.h). Throws as
// prepare_text (trace.h), and Error(Usage) for a contrast the method refuses
// (Method::refuses_contrast).
// `prompts_per_trace` (at least 1) bounds the chunks; the default suits every model, tests vary it.
PreparedPrompts prepare_prompts(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                                std::shared_ptr<const Method> method, Timings* timings = nullptr,
                                const TokenizedText* contrast = nullptr,
                                size_t prompts_per_trace = kPromptsPerTrace);

// `pixels`: [3, R, R] normalised image (image.h). Returns one entry per prompt, in order.
// `timings`, when given, is charged with the vision, text and relevance phases (timings.h).
std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const PreparedPrompts& prompts,
                                           Timings* timings = nullptr);

// Several images at once: the gradient-free start of the vision tower for `pixels` [B, 3, R, R]
// as the prompts' method needs it (trace.h), batched; then explain_image for each entry
// (ImageStates::image(i)). Results equal explaining each image alone, up to the rounding of
// batched matrix products.
ImageStates prepare_images(const ClipModel& model, const torch::Tensor& pixels,
                           const PreparedPrompts& prompts, Timings* timings = nullptr);
std::vector<PromptRelevance> explain_image(const ClipModel& model, const ImageStates& image,
                                           const PreparedPrompts& prompts,
                                           Timings* timings = nullptr);

// ---- chefer2021's parameters, typed ----

struct RelevanceOptions {
  std::optional<int> start_layer;       // vision tower; -1 = last layer only; 0 = all layers
  std::optional<int> start_layer_text;  // text tower; same convention
};
// The given start layers as MethodParameters (unset ones absent, so the defaults apply).
MethodParameters start_layer_parameters(const RelevanceOptions& options);

// The first block of each tower that the rollout keeps (0-based), for `options` on a model with
// `config` and `defaults`. Throws Error(Usage) for a start layer outside the model's layers.
struct StartLayers {
  int vision = 0;
  int text = 0;
};
StartLayers resolve_start_layers(const RelevanceOptions& options, const ModelConfig& config,
                                 const MethodDefaults& defaults);
// Layers [start_layer, layers) in words: "last layer (5)", "all layers (0-5)", "layers 3-5".
std::string describe_layers(int start_layer, int layers);

// chefer2021 with `options`: prepare_prompts, then explain_image.
PreparedPrompts prepare_prompts(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                                const RelevanceOptions& options, Timings* timings = nullptr);
std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const std::vector<TokenizedText>& prompts,
                                           const RelevanceOptions& options);

}  // namespace clipxai
