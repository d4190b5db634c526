#include "clipxai/engine.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "clipxai/error.h"

namespace clipxai {

std::vector<TokenizedText> tokenize_prompts(const Tokenizer& tokenizer,
                                            const std::vector<std::string>& texts,
                                            int context_length,
                                            const std::function<std::string(size_t index)>& where) {
  std::vector<TokenizedText> prompts;
  for (size_t i = 0; i < texts.size(); ++i) {
    try {
      prompts.push_back(tokenizer.tokenize(texts[i], context_length));
    } catch (const Error& error) {
      if (!where) throw;
      throw Error(error.category(), where(i) + ": " + error.what());
    }
    if (prompts.back().tokens.empty()) {
      const std::string quoted = "\"" + texts[i] + "\"";
      throw input_error((where ? where(i) + ": " + quoted : "prompt " + quoted) +
                        " has no tokens to explain; give a non-empty text");
    }
  }
  return prompts;
}

std::optional<TokenizedText> tokenize_contrast(const Tokenizer& tokenizer,
                                               const std::optional<std::string>& contrast,
                                               int context_length) {
  if (!contrast) return std::nullopt;
  return tokenize_prompts(tokenizer, {*contrast}, context_length,
                          [](size_t) { return std::string("--contrast"); })
      .front();
}

RelevanceMap prompt_map(const Explanation& explanation, size_t prompt) {
  return upsample_map(explanation.prompts.at(prompt).relevance.grid, explanation.crop,
                      explanation.width, explanation.height);
}

cv::Mat render_prompt_overlay(const DecodedImage& image, const Explanation& explanation,
                              size_t prompt, const OverlayStyle& style) {
  return render_overlay(image.rgb, prompt_map(explanation, prompt), style);
}

Session::Session(const ClipModel& model, const Tokenizer& tokenizer,
                 const std::vector<std::string>& texts, const ExplainSettings& settings,
                 Timings* timings)
    : Session(model, tokenize_prompts(tokenizer, texts, model.config().context_length), settings,
              timings,
              tokenize_contrast(tokenizer, settings.contrast, model.config().context_length)) {}

Session::Session(const ClipModel& model, std::vector<TokenizedText> prompts,
                 const ExplainSettings& settings, Timings* timings,
                 const std::optional<TokenizedText>& contrast)
    : model_(&model), settings_(settings), prompts_(std::move(prompts)) {
  if (settings.contrast.has_value() != contrast.has_value()) {
    throw Error(ErrorCategory::Internal,
                "Session: a contrast text without its tokens, or tokens "
                "without settings.contrast");
  }
  prepared_ =
      prepare_prompts(model, prompts_, create_method(settings.method, settings.parameters, model),
                      timings, contrast ? &*contrast : nullptr);
}

PreprocessedImage Session::preprocess(const DecodedImage& image) const {
  const ModelConfig& config = model_->config();
  return clipxai::preprocess(image, {config.input_resolution, config.image_mean, config.image_std},
                             settings_.crop);
}

Explanation Session::explain(const DecodedImage& image, Timings* timings) const {
  return explain(image, preprocess(image), timings);
}

ImageStates Session::prepare_images(const std::vector<const PreprocessedImage*>& inputs,
                                    Timings* timings) const {
  std::vector<torch::Tensor> pixels;
  for (const PreprocessedImage* input : inputs) pixels.push_back(input->pixels);
  return clipxai::prepare_images(*model_, torch::stack(pixels).to(model_->device()), prepared_,
                                 timings);
}

Explanation Session::explain(const DecodedImage& image, const PreprocessedImage& input,
                             Timings* timings, bool locate_peaks) const {
  return explain(image, input, prepare_images({&input}, timings), timings, locate_peaks);
}

Explanation Session::explain(const DecodedImage& image, const PreprocessedImage& input,
                             const ImageStates& states, Timings* timings, bool locate_peaks) const {
  std::vector<PromptRelevance> relevances = explain_image(*model_, states, prepared_, timings);
  Explanation explanation{image.width(), image.height(), input.crop, {}};
  for (size_t i = 0; i < relevances.size(); ++i) {
    explanation.prompts.push_back({prompts_[i], std::move(relevances[i]), {}});
  }
  if (!locate_peaks) return explanation;
  PhaseTimer timer(timings, Phase::Rendering);
  at::parallel_for(0, static_cast<int64_t>(explanation.prompts.size()), 1,
                   [&](int64_t begin, int64_t end) {
                     for (int64_t i = begin; i < end; ++i) {
                       const auto p = static_cast<size_t>(i);
                       explanation.prompts[p].peak = prompt_map(explanation, p).peak;
                     }
                   });
  return explanation;
}

nlohmann::json method_json(const Method& method, CropMode crop,
                           const std::optional<std::string>& contrast) {
  nlohmann::json description = method.description();
  description["crop"] = to_string(crop);
  if (contrast) description["contrast"] = *contrast;
  return description;
}

nlohmann::json Session::method_json() const {
  return clipxai::method_json(*prepared_.method, settings_.crop, settings_.contrast);
}

std::string Session::method_label() const { return prepared_.method->label(); }

}  // namespace clipxai
