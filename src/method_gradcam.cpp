// gradcam: Grad-CAM (Selvaraju et al. 2017) on a CLIP ViT as pytorch-grad-cam's CLIP example
// (usage_examples/clip_example.py) runs it: the activations are the last block's LayerNorm-1
// output (`encoder.layers[-1].layer_norm1`), the patch tokens as a grid (its reshape_transform
// drops the class token); channel weights = the mean gradient over the patches; map = ReLU of
// the weighted sum over channels. The example's model returns the softmax over the prompts, so
// the score differentiated is the prompt's probability (target=probability, its default); the
// paper's score before the softmax is target=logit. No token relevance.
#include <torch/torch.h>

#include "clipxai/error.h"
#include "clipxai/method.h"
#include "method_tools.h"
#include "transformer.h"

namespace clipxai {
namespace {

constexpr const char* kName = "gradcam";

class GradCam : public Method {
 public:
  GradCam(std::string target, const ModelConfig& config)
      : target_(std::move(target)),
        vision_layers_(config.vision_layers),
        text_layers_(config.text_layers),
        grid_(config.grid) {}

  TraceRequest trace_request() const override {
    return {vision_layers_, text_layers_, false, vision_layers_ - 1, -1, target_ == "probability"};
  }

  nlohmann::json description() const override {
    return {{"name", "gradcam-last-block-input"}, {"target", target_}};
  }

  std::string label() const override { return "last block input, target " + target_; }

  std::optional<std::string> refuses_contrast() const override {
    if (target_ == "logit") return std::nullopt;
    return "gradcam with target=probability explains a softmax share, not a logit; "
           "pass --param target=logit to contrast";
  }

  MethodMaps compute(const ClipModel& model, const ForwardTrace& trace) const override {
    const int64_t count = trace.text_features.size(0);
    const torch::Tensor& prompt_set =
        trace.prompt_set_features.defined() ? trace.prompt_set_features : trace.text_features;
    if (target_ == "probability" && prompt_set.size(0) < 2) {
      throw usage_error(
          "method gradcam, target=probability: one prompt's softmax share is always 1 and its "
          "gradient zero; give two prompts or more, or --param target=logit");
    }
    torch::AutoGradMode autograd(true);
    torch::Tensor activations;
    BlockTap tap;
    tap.normed = [&](const torch::Tensor& normed) {
      activations = leaf_copies(normed, count);
      return activations;
    };
    const auto class_row = torch::zeros({1}, trace.eot.options());
    const auto image =
        unit_rows(model.project_image(run_block(model.vision_transformer(), vision_layers_ - 1,
                                                trace.vision_state, class_row, &tap)
                                          .squeeze(1)));
    const double scale = model.logit_scale();
    torch::Tensor score;
    if (target_ == "probability") {
      // Copy p's share among all the prompts of the set, its own at first_prompt + p.
      const auto own = torch::arange(count, trace.eot.options()) + trace.first_prompt;
      score = torch::softmax(scale * torch::mm(image, prompt_set.t()), -1)
                  .gather(1, own.unsqueeze(1))
                  .squeeze(1);
    } else {
      score = explained_score(scale * (image * trace.text_features).sum(-1), image, trace.contrast,
                              scale);
    }
    const auto gradient = torch::autograd::grad({score.sum()}, {activations})[0];
    const int64_t patches = static_cast<int64_t>(grid_) * grid_;
    const auto weights = gradient.narrow(1, 1, patches).mean(1, true);
    const auto cam = (weights * activations.detach().narrow(1, 1, patches)).sum(-1).clamp_min(0);
    return {cam.reshape({count, grid_, grid_}), torch::Tensor()};
  }

 private:
  std::string target_;
  int vision_layers_;
  int text_layers_;
  int grid_;
};

std::unique_ptr<Method> create(const MethodParameters& parameters, const ModelConfig& config,
                               const MethodDefaults& /*defaults*/) {
  return std::make_unique<GradCam>(
      choice_parameter(parameters, kName, "target", {"probability", "logit"})
          .value_or("probability"),
      config);
}

}  // namespace

MethodInfo gradcam_method_info() {
  return {kName,
          "Grad-CAM on the last block's input tokens, as pytorch-grad-cam's CLIP example; no "
          "token relevance",
          {{"target",
            "the score differentiated: probability (the softmax over the prompts, the example's; "
            "default) or logit"}},
          create};
}

}  // namespace clipxai
