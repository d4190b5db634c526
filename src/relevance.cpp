#include "clipxai/relevance.h"

#include <algorithm>

#include <torch/torch.h>

#include "clipxai/error.h"
#include "method_tools.h"

namespace clipxai {

void check_contrast(const Method& method, const TokenizedText& contrast) {
  if (const auto refusal = method.refuses_contrast()) {
    throw usage_error("--contrast \"" + contrast.text + "\": " + *refusal);
  }
}

PreparedPrompts prepare_prompts(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                                std::shared_ptr<const Method> method, Timings* timings,
                                const TokenizedText* contrast, size_t prompts_per_trace) {
  if (contrast != nullptr) check_contrast(*method, *contrast);
  const TraceRequest request = method->trace_request();
  PreparedPrompts prepared{std::move(method), {}};
  const size_t per_trace = std::max<size_t>(1, prompts_per_trace);
  const size_t chunks = std::max<size_t>(1, (prompts.size() + per_trace - 1) / per_trace);
  for (size_t c = 0; c < chunks; ++c) {
    const size_t begin = prompts.size() * c / chunks;
    const size_t end = prompts.size() * (c + 1) / chunks;
    const std::vector<TokenizedText> chunk(prompts.begin() + static_cast<std::ptrdiff_t>(begin),
                                           prompts.begin() + static_cast<std::ptrdiff_t>(end));
    // The contrast text is encoded with the first chunk and shared by the others.
    prepared.chunks.push_back(
        prepare_text(model, chunk, request, timings, c == 0 ? contrast : nullptr));
    prepared.chunks.back().first_prompt = static_cast<int64_t>(begin);
    prepared.chunks.back().contrast = prepared.chunks.front().contrast;
  }
  if (request.prompt_set && chunks > 1) {
    DevicePhaseTimer timer(timings, Phase::Text, model.device());
    torch::NoGradGuard no_grad;
    const torch::Tensor features = unit_rows(model.encode_text(prompts));
    for (PreparedText& chunk : prepared.chunks) chunk.prompt_set_features = features;
  }
  return prepared;
}

namespace {

// Appends the results of one traced chunk of prompts, all but the probabilities.
void add_chunk_results(const ForwardTrace& trace, const MethodMaps& maps,
                       std::vector<PromptRelevance>& results) {
  const int64_t count = trace.logits.size(0);
  const auto grids = maps.grids.to(torch::kCPU, torch::kFloat).contiguous();
  const auto eot = trace.eot.to(torch::kCPU);
  const auto logits = trace.logits.to(torch::kCPU, torch::kDouble);
  const auto cosines = trace.cosines.to(torch::kCPU, torch::kDouble);
  const bool has_tokens = maps.token_relevance.defined();
  const auto token_rows =
      has_tokens ? maps.token_relevance.to(torch::kCPU, torch::kFloat) : torch::Tensor();
  for (int64_t p = 0; p < count; ++p) {
    PromptRelevance& result = results.emplace_back();
    result.logit = logits[p].item<double>();
    result.cosine = cosines[p].item<double>();
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
}

}  // namespace

ImageStates prepare_images(const ClipModel& model, const torch::Tensor& pixels,
                           const PreparedPrompts& prompts, Timings* timings) {
  return prepare_images(model, pixels, prompts.chunks.front().request, timings);
}

std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const PreparedPrompts& prompts, Timings* timings) {
  return explain_image(model, prepare_images(model, pixels.unsqueeze(0), prompts, timings), prompts,
                       timings);
}

std::vector<PromptRelevance> explain_image(const ClipModel& model, const ImageStates& image,
                                           const PreparedPrompts& prompts, Timings* timings) {
  if (image.size() != 1) {
    throw Error(ErrorCategory::Internal,
                "explain_image: states of " + std::to_string(image.size()) + " images, not one");
  }
  std::vector<PromptRelevance> results;
  for (const PreparedText& chunk : prompts.chunks) {
    const ForwardTrace trace = trace_forward(model, image, chunk, timings);
    DevicePhaseTimer timer(timings, Phase::Relevance, model.device());
    torch::NoGradGuard no_grad;
    add_chunk_results(trace, prompts.method->compute(model, trace), results);
  }
  auto logits = torch::empty({static_cast<int64_t>(results.size())}, torch::kDouble);
  for (size_t p = 0; p < results.size(); ++p) logits[static_cast<int64_t>(p)] = results[p].logit;
  const auto probabilities = torch::softmax(logits, 0);
  for (size_t p = 0; p < results.size(); ++p) {
    results[p].probability = probabilities[static_cast<int64_t>(p)].item<double>();
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
