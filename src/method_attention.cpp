// attention: the last layer's raw attention, mean over heads: the class token's row over the
// patches for the image (the same for every prompt), each prompt's EOT row over its tokens for
// the text (Grad-ECLIP's `self_attn` baseline). No parameters, no gradients.
#include <torch/torch.h>

#include "clipxai/method.h"
#include "method_tools.h"

namespace clipxai {
namespace {

class LastLayerAttention : public Method {
 public:
  explicit LastLayerAttention(const ModelConfig& config)
      : vision_layers_(config.vision_layers),
        text_layers_(config.text_layers),
        grid_(config.grid) {}

  TraceRequest trace_request() const override {
    return {vision_layers_ - 1, text_layers_ - 1, false};
  }

  nlohmann::json description() const override {
    return {{"name", "attention-last-layer"}, {"prompt_specific", false}};
  }

  std::string label() const override {
    return "last layer (" + std::to_string(vision_layers_ - 1) + ")";
  }

  MethodMaps compute(const ClipModel& /*model*/, const ForwardTrace& trace) const override {
    const int64_t count = trace.logits.size(0);
    const auto mean_row = [](const torch::Tensor& last) { return last.mean(1).squeeze(1); };
    return {patch_grid(mean_row(trace.vision_attention.back()), grid_, count),
            mean_row(trace.text_attention.back())};
  }

  std::optional<std::string> refuses_contrast() const override {
    return "attention is the model's attention alone and has no gradient target to contrast";
  }
  bool prompt_specific() const override { return false; }

 private:
  int vision_layers_;
  int text_layers_;
  int grid_;
};

std::unique_ptr<Method> create(const MethodParameters& /*parameters*/, const ModelConfig& config,
                               const MethodDefaults& /*defaults*/) {
  return std::make_unique<LastLayerAttention>(config);
}

}  // namespace

MethodInfo attention_method_info() {
  return {"attention",
          "the last layer's attention of the class token (of each prompt's EOT for the text), mean "
          "over heads; the same map for every prompt",
          {},
          create};
}

}  // namespace clipxai
