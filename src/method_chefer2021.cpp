// chefer2021: Chefer, Gur & Wolf 2021 gradient-weighted attention rollout (relevance.h), as the
// authors' CLIP notebook (Transformer-MM-Explainability, CLIP_explainability.ipynb, `interpret`).
#include <torch/torch.h>

#include "clipxai/error.h"
#include "clipxai/method.h"
#include "clipxai/relevance.h"
#include "transformer.h"

namespace clipxai {
namespace {

constexpr const char* kDescribedName = "chefer2021-gradient-rollout";

// The notebook's convention: -1 = the last layer only, N = from layer N on.
int resolve_start_layer(int start_layer, int layers, const std::string& tower) {
  if (!is_valid_start_layer(start_layer, layers)) {
    throw usage_error("start layer " + std::to_string(start_layer) + " is out of range for the " +
                      tower + " tower of " + std::to_string(layers) +
                      " layers (-1 = last layer only, 0.." + std::to_string(layers - 1) +
                      " = from that layer on)");
  }
  return start_layer == -1 ? layers - 1 : start_layer;
}

// Rows `rows` of R after R <- R + Abar.R over the recorded layers, from R = I, with
// Abar = mean over heads of ReLU(grad (.) A). The last layer's attention holds only the output
// row ([P, H, 1, N]); every other row of its Abar is zero. Returns [P, N].
torch::Tensor relevance_rows(const std::vector<torch::Tensor>& attention,
                             const std::vector<torch::Tensor>& gradients,
                             const torch::Tensor& rows) {
  const auto weighted = [&](size_t layer) {
    return (gradients[layer] * attention[layer]).clamp_min(0).mean(1);
  };
  const auto& last = attention.back();
  const int64_t tokens = last.size(-1);
  auto relevance = torch::eye(tokens, last.options()).expand({last.size(0), tokens, tokens});
  for (size_t layer = 0; layer + 1 < attention.size(); ++layer) {
    relevance = relevance + torch::bmm(weighted(layer), relevance);
  }
  return (select_rows(relevance, rows) + torch::bmm(weighted(attention.size() - 1), relevance))
      .squeeze(1);
}

class Chefer2021 : public Method {
 public:
  Chefer2021(StartLayers start, const ModelConfig& config)
      : start_(start), vision_layers_(config.vision_layers), grid_(config.grid) {}

  TraceRequest trace_request() const override { return {start_.vision, start_.text, true}; }

  nlohmann::json description() const override {
    return {{"name", kDescribedName},
            {"start_layer", start_.vision},
            {"start_layer_text", start_.text}};
  }

  std::string label() const override { return describe_layers(start_.vision, vision_layers_); }

  MethodMaps compute(const ClipModel& /*model*/, const ForwardTrace& trace) const override {
    const int64_t count = trace.logits.size(0);
    const auto class_row = torch::zeros({1}, trace.eot.options());
    const auto image = relevance_rows(trace.vision_attention, trace.vision_gradients, class_row)
                           .narrow(1, 1, static_cast<int64_t>(grid_) * grid_);
    return {image.reshape({count, grid_, grid_}),
            relevance_rows(trace.text_attention, trace.text_gradients, trace.eot)};
  }

 private:
  StartLayers start_;
  int vision_layers_;
  int grid_;
};

std::unique_ptr<Method> create(const MethodParameters& parameters, const ModelConfig& config,
                               const MethodDefaults& defaults) {
  const RelevanceOptions options{integer_parameter(parameters, "chefer2021", "start_layer"),
                                 integer_parameter(parameters, "chefer2021", "start_layer_text")};
  return std::make_unique<Chefer2021>(resolve_start_layers(options, config, defaults), config);
}

}  // namespace

MethodParameters start_layer_parameters(const RelevanceOptions& options) {
  MethodParameters parameters = MethodParameters::object();
  if (options.start_layer) parameters["start_layer"] = *options.start_layer;
  if (options.start_layer_text) parameters["start_layer_text"] = *options.start_layer_text;
  return parameters;
}

StartLayers resolve_start_layers(const RelevanceOptions& options, const ModelConfig& config,
                                 const MethodDefaults& defaults) {
  return {
      resolve_start_layer(options.start_layer.value_or(defaults.relevance_start_layer),
                          config.vision_layers, "vision"),
      resolve_start_layer(options.start_layer_text.value_or(defaults.relevance_start_layer_text),
                          config.text_layers, "text")};
}

std::string describe_layers(int start_layer, int layers) {
  const int last = layers - 1;
  if (start_layer == last) return "last layer (" + std::to_string(last) + ")";
  const std::string range = std::to_string(start_layer) + "-" + std::to_string(last);
  return start_layer == 0 ? "all layers (" + range + ")" : "layers " + range;
}

MethodInfo chefer2021_method_info() {
  return {"chefer2021",
          "Chefer, Gur & Wolf 2021: gradient-weighted attention rollout over both towers",
          {{"start_layer",
            "first vision layer of the rollout: -1 = the last only, 0 = all (default: the "
            "model's)"},
           {"start_layer_text", "first text layer of the rollout, likewise"}},
          create,
          /*defaults_from_model=*/true};
}

}  // namespace clipxai
