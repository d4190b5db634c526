// Whether a map is faithful to the model it explains: the measures `clipxai eval` reports beside
// the grounding metrics (eval.h).
//
// Deletion and insertion (Petsiuk et al. 2018, RISE's protocol): the prompt's map upsampled to
// the model's input (bilinear, R x R) orders the input's pixels, most relevant first (ties by
// position, row-major). In 50 steps of 2% of the pixels each, deletion sets them to the model's
// mean colour (0 in normalised pixels); insertion starts from the input blurred by an 11 x 11
// Gaussian of sigma 5 (zero, i.e. mean-colour, padding) and puts the original pixels back. At each
// of the 51 points the score is the prompt's probability: the softmax of the logits over the
// image's prompts. The area under each curve is the trapezoidal rule over [0, 1]: a faithful map
// makes deletion fall fast (low AUC) and insertion rise fast (high AUC).
//
// Model randomisation (Adebayo et al. 2018, cascading): the top `count` vision blocks
// re-initialised as CLIP initialises them (OpenAI's initialize_parameters: attention std
// width^-0.5, out-projection and MLP output std width^-0.5 (2 layers)^-0.5, MLP input std
// (2 width)^-0.5; biases 0; LayerNorms 1 and 0), seeded; the rank correlation (Spearman) of a
// method's raw grid on the trained model with its grid on the randomised one. A map that keeps a
// high correlation while the weights it explains are destroyed explains something else.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "clipxai/model.h"

namespace clipxai {

constexpr int kDeletionSteps = 50;

struct DeletionInsertion {
  std::vector<double> deletion;   // kDeletionSteps + 1 probabilities, 0% .. 100% of the pixels
  std::vector<double> insertion;  // likewise
  double deletion_auc = 0;
  double insertion_auc = 0;
};

// `pixels` [3, R, R] normalised, on the model's device; `grid` [G, G] the prompt's raw map;
// `text_features` [P, E] the unit features of the image's prompts; `prompt` the one explained.
DeletionInsertion deletion_insertion(const ClipModel& model, const torch::Tensor& pixels,
                                     const torch::Tensor& grid, const torch::Tensor& text_features,
                                     int64_t prompt);

// The trapezoidal area under `curve`, its points evenly spaced over [0, 1].
double area_under_curve(const std::vector<double>& curve);

// Spearman's rank correlation of two tensors of the same number of values (ties get their mean
// rank); NaN when either is constant.
double spearman(const torch::Tensor& a, const torch::Tensor& b);

// A copy of `model` (sharing its other tensors) with vision blocks [layers - count, layers)
// re-initialised as above from `seed`.
ClipModel with_randomised_vision_blocks(const ClipModel& model, int count, uint64_t seed);

// A PNG of mean deletion and insertion curves, one line per labelled series, with their AUCs in
// the legend.
struct CurveSeries {
  std::string label;
  std::vector<double> deletion;
  std::vector<double> insertion;
};
std::string plot_deletion_insertion(const std::vector<CurveSeries>& series);

}  // namespace clipxai
