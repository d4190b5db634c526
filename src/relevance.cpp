#include "clipxai/relevance.h"

#include <algorithm>

#include <torch/torch.h>

#include "clipxai/error.h"

namespace clipxai {

void check_contrast(const Method& method, const TokenizedText& contrast) {
  if (const auto refusal = method.refuses_contrast()) {
    throw usage_error("--contrast \"" + contrast.text + "\": " + *refusal);
  }
}

PreparedPrompts prepare_prompts(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                                std::shared_ptr<const Method> method, Timings* timings,
                                const TokenizedText* contrast) {
  if (contrast != nullptr) check_contrast(*method, *contrast);
  PreparedText text = prepare_text(model, prompts, method->trace_request(), timings, contrast);
  return {std::move(method), std::move(text)};
}

std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const PreparedPrompts& prompts, Timings* timings) {
  const ForwardTrace trace = trace_forward(model, pixels, prompts.text, timings);
  DevicePhaseTimer timer(timings, Phase::Relevance, model.device());
  torch::NoGradGuard no_grad;
  const MethodMaps maps = prompts.method->compute(model, trace);
  const int64_t count = trace.logits.size(0);
  const auto grids = maps.grids.to(torch::kCPU, torch::kFloat).contiguous();
  const auto eot = trace.eot.to(torch::kCPU);
  const auto logits = trace.logits.to(torch::kCPU, torch::kDouble);
  const auto probabilities = torch::softmax(logits, 0);
  const auto cosines = trace.cosines.to(torch::kCPU, torch::kDouble);
  const bool has_tokens = maps.token_relevance.defined();
  const auto token_rows =
      has_tokens ? maps.token_relevance.to(torch::kCPU, torch::kFloat) : torch::Tensor();

  std::vector<PromptRelevance> results(static_cast<size_t>(count));
  for (int64_t p = 0; p < count; ++p) {
    PromptRelevance& result = results[static_cast<size_t>(p)];
    result.logit = logits[p].item<double>();
    result.cosine = cosines[p].item<double>();
    result.probability = probabilities[p].item<double>();
    result.grid = grids[p];
    result.has_token_relevance = has_tokens;
    if (!has_tokens) continue;
    // Tokens strictly between SOT (slot 0) and EOT, normalised to sum 1. A zero sum of
    // non-negative relevances means every token has none; they stay zero.
    const int64_t tokens = std::max<int64_t>(eot[p].item<int64_t>() - 1, 0);
    const auto row = token_rows[p].narrow(0, 1, tokens);
    const double sum = row.sum().item<double>();
    const auto normalised = (sum > 0 ? row / sum : row).contiguous();
    result.token_relevance.assign(normalised.data_ptr<float>(),
                                  normalised.data_ptr<float>() + tokens);
  }
  return results;
}

PreparedPrompts prepare_prompts(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                                const RelevanceOptions& options, Timings* timings) {
  return prepare_prompts(
      model, prompts, create_method("chefer2021", start_layer_parameters(options), model), timings);
}

std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const std::vector<TokenizedText>& prompts,
                                           const RelevanceOptions& options) {
  return explain_image(model, pixels, prepare_prompts(model, prompts, options));
}

}  // namespace clipxai
