// legrad: LeGrad (Bousselham et al., ICCV 2025) as WalBouss/LeGrad's `compute_legrad_clip`: for
// each layer l from the start layer on, the image feature of that layer's tokens — their mean
// (the code's `feat_post_mlp.mean(dim=0)` over tokens, class token included) through ln_post and
// proj, normalised — and its cosine with the prompt; the gradient of that cosine with respect to
// layer l's attention alone, ReLU, mean over heads and over query rows; the patches' values
// summed over the layers. Default layer_index -2 (LeWrapper's): the last two layers. No token
// relevance (the code explains the image only).
#include <torch/torch.h>

#include "clipxai/error.h"
#include "clipxai/method.h"
#include "clipxai/relevance.h"
#include "method_tools.h"
#include "transformer.h"

namespace clipxai {
namespace {

constexpr const char* kName = "legrad";

class LeGrad : public Method {
 public:
  LeGrad(int layer_index, const ModelConfig& config)
      : layer_index_(layer_index),
        first_(layer_index >= 0 ? layer_index : config.vision_layers + layer_index),
        vision_layers_(config.vision_layers),
        text_layers_(config.text_layers),
        grid_(config.grid) {}

  TraceRequest trace_request() const override {
    return {vision_layers_, text_layers_, false, first_, -1};
  }

  nlohmann::json description() const override {
    return {{"name", "legrad-bousselham2025"}, {"layer_index", layer_index_}};
  }

  std::string label() const override { return describe_layers(first_, vision_layers_); }

  MethodMaps compute(const ClipModel& model, const ForwardTrace& trace) const override {
    const int64_t count = trace.text_features.size(0);
    torch::AutoGradMode autograd(true);
    std::vector<torch::Tensor> attention;
    BlockTap tap;
    tap.attention = [&](const torch::Tensor& probabilities) {
      attention.push_back(leaf_copies(probabilities, count));
      return attention.back();
    };
    // Each layer's input is detached, so the summed cosines' gradient at layer l's attention is
    // exactly that layer's own cosine's, as one autograd.grad per layer gives.
    auto states = trace.vision_state;
    torch::Tensor score;
    for (int layer = first_; layer < vision_layers_; ++layer) {
      const auto output = run_block(model.vision_transformer(), layer, states, {}, &tap);
      const auto image = unit_rows(model.project_image(output.mean(1)));
      const auto cosine =
          explained_score((image * trace.text_features).sum(-1), image, trace.contrast, 1.0);
      score = score.defined() ? score + cosine : cosine;
      states = output.narrow(0, 0, 1).detach();
    }
    const auto gradients = torch::autograd::grad({score.sum()}, attention);
    torch::Tensor map;
    for (const auto& gradient : gradients) {
      const auto layer_map = gradient.clamp_min(0).mean(1).mean(1);
      map = map.defined() ? map + layer_map : layer_map;
    }
    return {patch_grid(map, grid_, count), torch::Tensor()};
  }

 private:
  int layer_index_;
  int first_;
  int vision_layers_;
  int text_layers_;
  int grid_;
};

std::unique_ptr<Method> create(const MethodParameters& parameters, const ModelConfig& config,
                               const MethodDefaults& /*defaults*/) {
  const int layer_index = integer_parameter(parameters, kName, "layer_index").value_or(-2);
  const int layers = config.vision_layers;
  if (layer_index < -layers || layer_index >= layers) {
    throw usage_error("method legrad: layer_index " + std::to_string(layer_index) +
                      " is out of range for the vision tower of " + std::to_string(layers) +
                      " layers (" + std::to_string(-layers) + "..-1 from the end, 0.." +
                      std::to_string(layers - 1) + " from the start)");
  }
  return std::make_unique<LeGrad>(layer_index, config);
}

}  // namespace

MethodInfo legrad_method_info() {
  return {kName,
          "LeGrad (Bousselham et al. 2025): per layer, the gradient of that layer's image-text "
          "cosine at its attention, ReLU, averaged; summed over the last layers; no token "
          "relevance",
          {{"layer_index",
            "first layer used: negative counts from the end (default -2, the last two)"}},
          create};
}

}  // namespace clipxai
