// The explain engine: a Session made once from a model, a tokenizer, a method with its parameters
// and the prompts (tokenised and their text-side work prepared once), explaining decoded images in
// memory. Every front end — `clipxai explain`, `clipxai eval`, a server — explains through it.
//
// An Explanation holds no file paths: per prompt the scores, the method's raw grid, the token
// relevances and the peak, plus the image's size and the crop the model saw. Rendering it
// (render.h: overlay pictures; output.h: PNG bytes) and writing files (explain_job.h) are
// separate steps, so a caller can render without touching the disk.
//
// A Session is used from one thread at a time for explain() and prepare_images(); preprocess()
// may run on other threads meanwhile (decoding workers). The model it was made with must outlive
// it and stay on the same device.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "clipxai/image.h"
#include "clipxai/method.h"
#include "clipxai/model.h"
#include "clipxai/relevance.h"
#include "clipxai/render.h"
#include "clipxai/timings.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

struct ExplainSettings {
  std::string method = "chefer2021";  // a registered method's name (method.h)
  MethodParameters parameters = MethodParameters::object();  // absent names: the defaults
  CropMode crop = CropMode::Center;
  // Explain logit(prompt) - logit(contrast): what makes the image the prompt rather than this.
  std::optional<std::string> contrast;
};

struct PromptExplanation {
  TokenizedText prompt;
  PromptRelevance relevance;
  cv::Point peak;  // (x, y) in the image's pixels where the upsampled map is highest (render.h)
};

struct Explanation {
  int width = 0;
  int height = 0;
  CropRegion crop;                         // the square the model saw, in the image's pixels
  std::vector<PromptExplanation> prompts;  // in the session's prompt order
};

// The prompts as a model's context slots. Throws Error(Input) for text that is not UTF-8 or has
// no tokens to explain (an empty prompt): 'prompt "" has no tokens to explain; ...', or, when
// `where` is given, naming prompt i by where(i) ('m.json: images[0].prompts[1]: "" has no ...').
std::vector<TokenizedText> tokenize_prompts(
    const Tokenizer& tokenizer, const std::vector<std::string>& texts, int context_length,
    const std::function<std::string(size_t index)>& where = nullptr);

// The contrast text (ExplainSettings::contrast) as context slots, named "--contrast" in errors
// as tokenize_prompts names prompts; nullopt for none.
std::optional<TokenizedText> tokenize_contrast(const Tokenizer& tokenizer,
                                               const std::optional<std::string>& contrast,
                                               int context_length);

// The document's "method" object: `method`'s description plus "crop" and, with one, "contrast".
nlohmann::json method_json(const Method& method, CropMode crop,
                           const std::optional<std::string>& contrast = std::nullopt);

// Prompt `prompt`'s map upsampled to the image (render.h's RelevanceMap, with its peak).
RelevanceMap prompt_map(const Explanation& explanation, size_t prompt);

// The overlay picture (render.h) of prompt `prompt` of `explanation` over `image`, the image it
// explains: CV_8UC3 RGB, the image's size.
cv::Mat render_prompt_overlay(const DecodedImage& image, const Explanation& explanation,
                              size_t prompt, const OverlayStyle& style);

class Session {
 public:
  // Throws Error(Usage) for an unknown method, parameters it refuses (a start layer outside the
  // model), a contrast it refuses, or no prompts; Error(Input) for prompts (or a contrast text)
  // that cannot be tokenised or do not fit.
  // `timings`, when given, is charged with the text phase of preparing the prompts.
  Session(const ClipModel& model, const Tokenizer& tokenizer, const std::vector<std::string>& texts,
          const ExplainSettings& settings, Timings* timings = nullptr);
  // The same for prompts already tokenised for this model (tokenize_prompts), and the contrast
  // text when settings.contrast is set.
  Session(const ClipModel& model, std::vector<TokenizedText> prompts,
          const ExplainSettings& settings, Timings* timings = nullptr,
          const std::optional<TokenizedText>& contrast = std::nullopt);

  // The model's input for `image` (thread-safe).
  PreprocessedImage preprocess(const DecodedImage& image) const;
  Explanation explain(const DecodedImage& image, Timings* timings = nullptr) const;
  // The same from an input preprocess() made for `image`. Locating a peak upsamples the map to
  // the image's size; a caller that upsamples each map anyway (prompt_map, to render or measure
  // it) passes locate_peaks = false, takes the peak from its map, and no map is upsampled twice.
  // The peaks are then left at (0, 0).
  Explanation explain(const DecodedImage& image, const PreprocessedImage& input,
                      Timings* timings = nullptr, bool locate_peaks = true) const;
  // Several images: the gradient-free start of the vision tower for preprocess()'s `inputs`
  // together (relevance.h's prepare_images: one batch of matrix products instead of one per
  // image), then explain() of each image from its entry (ImageStates::image(i)). The results
  // equal explaining each image alone up to the rounding of batched products.
  ImageStates prepare_images(const std::vector<const PreprocessedImage*>& inputs,
                             Timings* timings = nullptr) const;
  Explanation explain(const DecodedImage& image, const PreprocessedImage& input,
                      const ImageStates& states, Timings* timings = nullptr,
                      bool locate_peaks = true) const;

  // The document's "method" object: the method's description plus "crop".
  nlohmann::json method_json() const;
  // The method's settings in a few words (Method::label).
  std::string method_label() const;
  const std::vector<TokenizedText>& prompts() const { return prompts_; }
  const ClipModel& model() const { return *model_; }
  const ExplainSettings& settings() const { return settings_; }

 private:
  const ClipModel* model_;
  ExplainSettings settings_;
  std::vector<TokenizedText> prompts_;
  PreparedPrompts prepared_;
};

}  // namespace clipxai
