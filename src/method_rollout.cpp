// rollout: Abnar & Zuidema 2020 attention rollout, as Chefer et al.'s `compute_rollout_attention`
// (Transformer-Explainability, adapted from samiraabnar/attention_flow) which Grad-ECLIP's code
// reuses for CLIP: per layer l from the start layer, A~_l = rownorm(mean over heads of A_l + I);
// the joint attention A~_L ... A~_s; the image map is its class-token row over the patches, the
// token relevance its EOT row. Attention only, no gradients: the image map is the same for every
// prompt.
#include <torch/torch.h>

#include "clipxai/method.h"
#include "clipxai/relevance.h"
#include "method_tools.h"

namespace clipxai {
namespace {

constexpr const char* kName = "rollout";

// Row `rows` ([1] or [B]) of the joint attention over `attention` (the last entry holding only
// that row, [B, H, 1, N]), from the first entry on: [B, N].
torch::Tensor rollout_rows(const std::vector<torch::Tensor>& attention, const torch::Tensor& rows) {
  const auto augmented = [](const torch::Tensor& probabilities, const torch::Tensor& identity) {
    const auto mixed = probabilities.mean(1) + identity;
    return mixed / mixed.sum(-1, true);
  };
  const auto& last = attention.back();
  const int64_t batch = last.size(0);
  const int64_t tokens = last.size(-1);
  auto joint = torch::eye(tokens, last.options()).expand({batch, tokens, tokens});
  for (size_t layer = 0; layer + 1 < attention.size(); ++layer) {
    joint = torch::bmm(augmented(attention[layer], torch::eye(tokens, last.options())), joint);
  }
  const auto output_rows = torch::zeros({batch, 1, tokens}, last.options())
                               .scatter_(2, rows.view({-1, 1, 1}).expand({batch, 1, 1}), 1.0);
  return torch::bmm(augmented(last, output_rows), joint).squeeze(1);
}

class Rollout : public Method {
 public:
  Rollout(StartLayers start, const ModelConfig& config)
      : start_(start), vision_layers_(config.vision_layers), grid_(config.grid) {}

  TraceRequest trace_request() const override { return {start_.vision, start_.text, false}; }

  nlohmann::json description() const override {
    return {{"name", "rollout-abnar2020"},
            {"start_layer", start_.vision},
            {"start_layer_text", start_.text},
            {"prompt_specific", false}};
  }

  std::string label() const override { return describe_layers(start_.vision, vision_layers_); }

  MethodMaps compute(const ClipModel& /*model*/, const ForwardTrace& trace) const override {
    const int64_t count = trace.logits.size(0);
    const auto class_row = torch::zeros({1}, trace.eot.options());
    return {patch_grid(rollout_rows(trace.vision_attention, class_row), grid_, count),
            rollout_rows(trace.text_attention, trace.eot)};
  }

  std::optional<std::string> refuses_contrast() const override {
    return "rollout uses attention only and has no gradient target to contrast";
  }
  bool prompt_specific() const override { return false; }

 private:
  StartLayers start_;
  int vision_layers_;
  int grid_;
};

std::unique_ptr<Method> create(const MethodParameters& parameters, const ModelConfig& config,
                               const MethodDefaults& /*defaults*/) {
  const RelevanceOptions options{integer_parameter(parameters, kName, "start_layer"),
                                 integer_parameter(parameters, kName, "start_layer_text")};
  // The authors' rollout starts at the first layer whatever the model's Chefer default.
  return std::make_unique<Rollout>(resolve_start_layers(options, config, MethodDefaults{0, 0}),
                                   config);
}

}  // namespace

MethodInfo rollout_method_info() {
  return {kName,
          "Abnar & Zuidema 2020 attention rollout: the product of head-averaged attention plus "
          "identity, row-normalised; the same map for every prompt",
          {{"start_layer", "first vision layer of the product: 0 = all (default), -1 = the last"},
           {"start_layer_text", "first text layer, likewise (default 0)"}},
          create};
}

}  // namespace clipxai
