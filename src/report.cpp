#include "clipxai/report.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <torch/torch.h>

#include "clipxai/output.h"

namespace clipxai {
namespace {

// The double whose shortest decimal form reads back as `value` in float32, so that JSON holds
// "0.1234567" rather than the float's exact binary expansion "0.12345670163631439".
double float_for_json(float value) {
  char text[32];
  for (int digits = 6; digits < 9; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtof(text, nullptr) == value) return std::strtod(text, nullptr);
  }
  std::snprintf(text, sizeof text, "%.9g", value);
  return std::strtod(text, nullptr);
}

nlohmann::json grid_json(const torch::Tensor& grid) {
  const torch::Tensor values = grid.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t rows = values.size(0);
  const int64_t cols = values.size(1);
  const float* value = values.data_ptr<float>();
  nlohmann::json out = nlohmann::json::array();
  for (int64_t r = 0; r < rows; ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t c = 0; c < cols; ++c) row.push_back(float_for_json(value[r * cols + c]));
    out.push_back(std::move(row));
  }
  return out;
}

nlohmann::json tokens_json(const PromptResult& result) {
  if (!result.relevance.has_token_relevance) return nullptr;
  const std::vector<std::string>& tokens = result.prompt.tokens;
  const std::vector<float>& relevance = result.relevance.token_relevance;
  if (tokens.size() != relevance.size()) {
    throw Error(ErrorCategory::Internal, "prompt \"" + result.prompt.text + "\" has " +
                                             std::to_string(tokens.size()) + " tokens but " +
                                             std::to_string(relevance.size()) + " relevances");
  }
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    out.push_back({{"token", tokens[i]}, {"relevance", float_for_json(relevance[i])}});
  }
  return out;
}

nlohmann::json floats_json(const std::array<float, 3>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (float value : values) out.push_back(float_for_json(value));
  return out;
}

nlohmann::json optional_path(const std::optional<std::string>& path) {
  return path ? nlohmann::json(*path) : nlohmann::json(nullptr);
}

nlohmann::json prompt_json(const PromptResult& result) {
  const PromptRelevance& relevance = result.relevance;
  nlohmann::json prompt = {
      {"text", result.prompt.text},
      {"logit", relevance.logit},
      {"cosine", relevance.cosine},
      {"probability", relevance.probability},
      {"grid", grid_json(relevance.grid)},
      {"peak", {result.peak.x, result.peak.y}},
      {"tokens", tokens_json(result)},
      {"truncated", result.prompt.truncated},
      {"overlay", optional_path(result.overlay)},
      {"raw", optional_path(result.raw)},
  };
  if (result.span) prompt["span"] = {result.span->start, result.span->end};
  return prompt;
}

// Display width of UTF-8 text, counting code points.
size_t display_width(const std::string& text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

}  // namespace

std::string to_string(ErrorCategory category) {
  switch (category) {
    case ErrorCategory::Usage:
      return "usage";
    case ErrorCategory::Input:
      return "input";
    case ErrorCategory::Model:
      return "model";
    case ErrorCategory::Internal:
      break;
  }
  return "internal";
}

nlohmann::json model_json(const std::string& path, const ModelConfig& config,
                          const MethodDefaults& defaults, const std::string& tokenizer_source) {
  const StartLayers model_default = resolve_start_layers({}, config, defaults);
  return {
      {"path", path_text(path)},
      {"name", config.name},
      {"resolution", config.input_resolution},
      {"patch_size", config.patch_size},
      {"grid", config.grid},
      {"vision_width", config.vision_width},
      {"vision_layers", config.vision_layers},
      {"vision_heads", config.vision_heads},
      {"text_width", config.text_width},
      {"text_layers", config.text_layers},
      {"text_heads", config.text_heads},
      {"embed_dim", config.embed_dim},
      {"context_length", config.context_length},
      {"vocab_size", config.vocab_size},
      {"activation", to_string(config.activation)},
      {"image_mean", floats_json(config.image_mean)},
      {"image_std", floats_json(config.image_std)},
      {"relevance_start_layer", model_default.vision},
      {"relevance_start_layer_text", model_default.text},
      {"tokenizer", path_text(tokenizer_source)},
  };
}

nlohmann::json model_json(const ClipModel& model, const std::string& tokenizer_source) {
  return model_json(model.path(), model.config(), model.method_defaults(), tokenizer_source);
}

ImageResult image_result(const std::string& image, const Explanation& explanation,
                         const std::vector<std::string>& overlays,
                         const std::vector<std::string>& raws,
                         const std::vector<std::optional<TextSpan>>& spans) {
  ImageResult result{image, explanation.width, explanation.height, explanation.crop, {}};
  for (size_t i = 0; i < explanation.prompts.size(); ++i) {
    const PromptExplanation& prompt = explanation.prompts[i];
    PromptResult written{prompt.prompt, prompt.relevance, prompt.peak, {}, {}, {}};
    if (i < overlays.size()) written.overlay = path_text(overlays[i]);
    if (i < raws.size()) written.raw = path_text(raws[i]);
    if (i < spans.size()) written.span = spans[i];
    result.prompts.push_back(std::move(written));
  }
  return result;
}

nlohmann::json image_result_json(const ImageResult& result) {
  nlohmann::json prompts = nlohmann::json::array();
  for (const PromptResult& prompt : result.prompts) prompts.push_back(prompt_json(prompt));
  return {
      {"image", result.image},
      {"width", result.width},
      {"height", result.height},
      {"crop",
       {{"x", result.crop.x},
        {"y", result.crop.y},
        {"width", result.crop.width},
        {"height", result.crop.height}}},
      {"prompts", std::move(prompts)},
  };
}

nlohmann::json error_json(const ErrorRecord& error) {
  return {
      {"image", error.image}, {"category", to_string(error.category)}, {"message", error.message}};
}

nlohmann::json report_json(const nlohmann::json& model, const nlohmann::json& method,
                           const std::vector<ImageResult>& results,
                           const std::vector<ErrorRecord>& errors) {
  nlohmann::json result_array = nlohmann::json::array();
  for (const ImageResult& result : results) result_array.push_back(image_result_json(result));
  nlohmann::json error_array = nlohmann::json::array();
  for (const ErrorRecord& error : errors) error_array.push_back(error_json(error));
  return {
      {"clipxai_version", CLIPXAI_VERSION},
      {"model", model},
      {"method", method},
      {"results", std::move(result_array)},
      {"errors", std::move(error_array)},
  };
}

std::vector<std::string> console_lines(const ImageResult& result) {
  std::vector<std::string> quoted;
  size_t width = 0;
  for (const PromptResult& prompt : result.prompts) {
    quoted.push_back('"' + prompt.prompt.text + '"');
    width = std::max(width, display_width(quoted.back()));
  }
  std::vector<std::string> lines;
  for (size_t i = 0; i < result.prompts.size(); ++i) {
    const PromptResult& prompt = result.prompts[i];
    std::ostringstream line;
    line.setf(std::ios::fixed);
    line << quoted[i] << std::string(width - display_width(quoted[i]), ' ');
    line.precision(4);
    line << "  p=" << prompt.relevance.probability;
    line.precision(3);
    line << "  logit=" << prompt.relevance.logit;
    line << "  peak=(" << prompt.peak.x << "," << prompt.peak.y << ")";
    if (prompt.overlay) line << "  -> " << *prompt.overlay;
    if (prompt.prompt.truncated) line << "  [truncated to fit the context]";
    if (!prompt.relevance.has_token_relevance) line << "  [the method gives no token relevance]";
    lines.push_back(line.str());
  }
  return lines;
}

}  // namespace clipxai
