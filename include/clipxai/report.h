// The JSON document and console lines of `clipxai explain`.
//
// Schema (numbers are JSON numbers; paths as given or as written):
// {
//   "clipxai_version": "0.1.0",
//   "model": {
//     "path": "models/clipxai-emoji-vit.pt", "name": "clipxai-emoji-vit",
//     "resolution": 224, "patch_size": 32, "grid": 7,
//     "vision_width": 256, "vision_layers": 6, "vision_heads": 4,
//     "text_width": 256, "text_layers": 4, "text_heads": 4,
//     "embed_dim": 256, "context_length": 32, "vocab_size": 1000,
//     "activation": "quick_gelu", "image_mean": [r, g, b], "image_std": [r, g, b],
//     "relevance_start_layer": 0,       // the model's default rollout depth (0-based, resolved:
//     "relevance_start_layer_text": 3,  // what "method" gets when no start layer is chosen)
//     "tokenizer": "<where the vocabulary came from>"
//   },
//   "method": {               // the method's description (method.h) plus the crop; chefer2021:
//     "name": "chefer2021-gradient-rollout",
//     "start_layer": 5,       // first vision layer whose attention enters the rollout (0-based)
//     "start_layer_text": 3,  // first text layer likewise
//     "crop": "center"        // or "pad"
//   },
//   "results": [               // one object per image
//     {
//       "image": "photo.jpg", "width": 640, "height": 480,
//       "crop": {"x": 80, "y": 0, "width": 480, "height": 480},  // the square the model saw,
//                                                               // in original pixels
//       "prompts": [           // in the order given
//         {
//           "text": "a dog",
//           "logit": 27.41,          // exp(logit_scale) * cosine
//           "cosine": 0.2741,
//           "probability": 0.87,     // softmax of the logits over this image's prompts
//           "grid": [[...], ...],    // raw R[CLS, patches]: grid rows, top row first
//           "peak": [312, 208],      // [x, y] original pixel where the upsampled map is highest
//           "tokens": [{"token": "a", "relevance": 0.31}, {"token": "dog", "relevance": 0.69}],
//                                    // tokens between start and end; relevances sum to 1;
//                                    // null for a method that defines no token relevance
//           "truncated": false,      // the prompt did not fit the context and was cut
//           "span": [0, 6],          // only on a noun phrase of a sentence (--phrases): its
//                                    // [start, end) in the sentence, in code points (phrases.h)
//           "overlay": "clipxai-out/photo__a-dog.png",  // or null
//           "raw": "clipxai-out/photo__a-dog.npy"       // with --save-raw, else null
//         }
//       ]
//     }
//   ],
//   "errors": [                // inputs that failed; empty when none
//     {"image": "broken.png", "category": "input", "message": "broken.png: ..."}
//   ]
// }
// Grid and token relevance values are float32 quantities, written with the fewest digits that
// read back as the same float32.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "clipxai/engine.h"
#include "clipxai/error.h"
#include "clipxai/image.h"
#include "clipxai/model.h"
#include "clipxai/phrases.h"
#include "clipxai/relevance.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

struct PromptResult {
  TokenizedText prompt;
  PromptRelevance relevance;
  cv::Point peak;
  std::optional<std::string> overlay;  // path of the overlay PNG, if written
  std::optional<std::string> raw;      // path of the raw .npy map, if written
  std::optional<TextSpan> span;        // a noun phrase's place in the sentence (phrases.h)
};

struct ImageResult {
  std::string image;  // the path as given
  int width = 0;
  int height = 0;
  CropRegion crop;
  std::vector<PromptResult> prompts;
};

struct ErrorRecord {
  std::string image;
  ErrorCategory category = ErrorCategory::Input;
  std::string message;
};

std::string to_string(ErrorCategory category);

// The "model" object; its relevance_start_layer* are the model's MethodDefaults resolved to
// 0-based first layers.
nlohmann::json model_json(const std::string& path, const ModelConfig& config,
                          const MethodDefaults& defaults, const std::string& tokenizer_source);
nlohmann::json model_json(const ClipModel& model, const std::string& tokenizer_source);
// An image's result object. `explanation` gives the scores, grids, tokens and peaks; `overlays`
// and `raws` the files written for its prompts (empty: none), `spans` the prompts' places in a
// sentence (PhrasePrompts::spans; empty: none).
ImageResult image_result(const std::string& image, const Explanation& explanation,
                         const std::vector<std::string>& overlays,
                         const std::vector<std::string>& raws,
                         const std::vector<std::optional<TextSpan>>& spans = {});
nlohmann::json image_result_json(const ImageResult& result);
nlohmann::json error_json(const ErrorRecord& error);
// `method`: the session's method_json().
nlohmann::json report_json(const nlohmann::json& model, const nlohmann::json& method,
                           const std::vector<ImageResult>& results,
                           const std::vector<ErrorRecord>& errors);

// One line per prompt, columns aligned across the image's prompts:
//   "a dog"  p=0.8731  logit=27.412  peak=(312,208)  -> clipxai-out/photo__a-dog.png
// followed by "  [truncated to fit the context]" for a prompt that was cut.
std::vector<std::string> console_lines(const ImageResult& result);

}  // namespace clipxai
