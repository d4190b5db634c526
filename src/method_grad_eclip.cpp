// grad-eclip: Grad-ECLIP (Zhao et al., ICML 2024) as Cyang-Zhao/Grad-Eclip's notebooks compute it
// (grad_eclip_image.ipynb, grad_eclip_text.ipynb). The last `layers` blocks are read with one
// attention head over the full width (the code's attention_layer(q, k, v, 1)); the score is the
// cosine of image and text features so computed. Per block: the gradient of the score at the
// attention output's class-token row gives channel weights; each patch's value, times them,
// times the spatial weight — cos(q_cls, k_patch) min-max normalised over the patches — summed
// over channels; ReLU per block, summed over blocks.
// Text: the same over the last `text_layers` text blocks at each prompt's EOT row (cosine with
// the model's image features), cos(q_eot, k_j) min-max normalised, summed over blocks, then ReLU.
// Where the text code normalises q.k over all 77 context slots — padding after the EOT, which the
// causal EOT query cannot see, included — this normalises over the slots up to the EOT.
#include <torch/torch.h>

#include "clipxai/error.h"
#include "clipxai/method.h"
#include "method_tools.h"
#include "transformer.h"

namespace clipxai {
namespace {

constexpr const char* kName = "grad-eclip";

// The autograd nodes and projections of the blocks run for one tower.
struct TappedBlocks {
  std::vector<torch::Tensor> attended;  // [B, Q, W] each, in block order
  std::vector<torch::Tensor> queries, keys, values;
  torch::Tensor output;  // the last block's output rows, [B, W]
};

// Blocks [first, layers) of `transformer` over `states`, single-headed, the last computing only
// `rows`; the first block's attention output becomes a leaf of `count` copies.
TappedBlocks run_tapped(const TransformerWeights& transformer, int first,
                        const torch::Tensor& states, const torch::Tensor& rows, int64_t count) {
  TappedBlocks run;
  const int layers = static_cast<int>(transformer.blocks.size());
  auto x = states;
  for (int layer = first; layer < layers; ++layer) {
    BlockTap tap;
    tap.single_head = true;
    tap.attended = [&](const torch::Tensor& attended) {
      run.attended.push_back(run.attended.empty() ? leaf_copies(attended, count) : attended);
      return run.attended.back();
    };
    x = run_block(transformer, layer, x, layer == layers - 1 ? rows : torch::Tensor(), &tap);
    run.queries.push_back(tap.queries);
    run.keys.push_back(tap.keys);
    run.values.push_back(tap.values.detach());
  }
  run.output = x.squeeze(1);
  return run;
}

// Row `row` ([B] slots) of `x` [B, N, W] -> [B, W]; a last block's single row is row 0.
torch::Tensor row_of(const torch::Tensor& x, const torch::Tensor& row) {
  if (x.size(1) == 1) return x.select(1, 0);
  return select_rows(x, row).squeeze(1);
}

class GradEclip : public Method {
 public:
  GradEclip(int layers, int text_layers, const ModelConfig& config)
      : layers_(layers),
        text_layers_(text_layers),
        vision_layers_(config.vision_layers),
        text_tower_layers_(config.text_layers),
        grid_(config.grid) {}

  TraceRequest trace_request() const override {
    return {vision_layers_, text_tower_layers_, false, vision_layers_ - layers_,
            text_tower_layers_ - text_layers_};
  }

  nlohmann::json description() const override {
    return {{"name", "grad-eclip-zhao2024"}, {"layers", layers_}, {"text_layers", text_layers_}};
  }

  std::string label() const override {
    return layers_ == 1 ? "last block" : "last " + std::to_string(layers_) + " blocks";
  }

  MethodMaps compute(const ClipModel& model, const ForwardTrace& trace) const override {
    torch::AutoGradMode autograd(true);
    return {image_map(model, trace), token_relevance(model, trace)};
  }

 private:
  torch::Tensor image_map(const ClipModel& model, const ForwardTrace& trace) const {
    const int64_t count = trace.text_features.size(0);
    const auto class_row = torch::zeros({1}, trace.eot.options());
    const TappedBlocks run = run_tapped(model.vision_transformer(), vision_layers_ - layers_,
                                        trace.vision_state, class_row, count);
    const auto image = unit_rows(model.project_image(run.output));
    const auto score =
        explained_score((image * trace.text_features).sum(-1), image, trace.contrast, 1.0);
    const auto gradients = torch::autograd::grad({score.sum()}, run.attended);
    const int64_t patches = static_cast<int64_t>(grid_) * grid_;
    torch::Tensor map;
    for (size_t block = 0; block < gradients.size(); ++block) {
      const auto channel_weights = row_of(gradients[block], class_row).unsqueeze(1);  // [P,1,W]
      const auto query = unit_rows(row_of(run.queries[block], class_row).detach());
      const auto keys = unit_rows(run.keys[block].detach().narrow(1, 1, patches));
      const auto spatial = min_max_rows((query.unsqueeze(1) * keys).sum(-1));  // [B, patches]
      const auto block_map =
          (channel_weights * run.values[block].narrow(1, 1, patches) * spatial.unsqueeze(-1))
              .sum(-1)
              .clamp_min(0);
      map = map.defined() ? map + block_map : block_map;
    }
    return map.reshape({count, grid_, grid_});
  }

  torch::Tensor token_relevance(const ClipModel& model, const ForwardTrace& trace) const {
    const int64_t count = trace.text_features.size(0);
    const TappedBlocks run = run_tapped(model.text_transformer(), text_tower_layers_ - text_layers_,
                                        trace.text_state, trace.eot, count);
    const auto text = unit_rows(model.project_text(run.output));
    const auto score = (trace.image_features * text).sum(-1);
    const auto gradients = torch::autograd::grad({score.sum()}, run.attended);
    const int64_t slots = trace.text_state.size(1);
    const auto visible = torch::arange(slots, trace.eot.options()).unsqueeze(0) <=
                         trace.eot.unsqueeze(1);  // [P, T]: the slots the EOT query sees
    torch::Tensor relevance;
    for (size_t block = 0; block < gradients.size(); ++block) {
      const auto channel_weights = row_of(gradients[block], trace.eot).unsqueeze(1);
      const auto query = unit_rows(row_of(run.queries[block], trace.eot).detach());
      const auto keys = unit_rows(run.keys[block].detach());
      const auto spatial = min_max_rows((query.unsqueeze(1) * keys).sum(-1), visible);
      const auto block_relevance =
          (channel_weights * run.values[block] * spatial.unsqueeze(-1)).sum(-1);
      relevance = relevance.defined() ? relevance + block_relevance : block_relevance;
    }
    return relevance.clamp_min(0).masked_fill(visible.logical_not(), 0);
  }

  int layers_;
  int text_layers_;
  int vision_layers_;
  int text_tower_layers_;
  int grid_;
};

int block_count(const MethodParameters& parameters, const char* name, int layers,
                const char* tower) {
  const int count = integer_parameter(parameters, kName, name).value_or(1);
  if (count < 1 || count > layers) {
    throw usage_error("method grad-eclip: " + std::string(name) + " " + std::to_string(count) +
                      " is out of range for the " + tower + " tower of " + std::to_string(layers) +
                      " layers (1.." + std::to_string(layers) + " last blocks)");
  }
  return count;
}

std::unique_ptr<Method> create(const MethodParameters& parameters, const ModelConfig& config,
                               const MethodDefaults& /*defaults*/) {
  return std::make_unique<GradEclip>(
      block_count(parameters, "layers", config.vision_layers, "vision"),
      block_count(parameters, "text_layers", config.text_layers, "text"), config);
}

}  // namespace

MethodInfo grad_eclip_method_info() {
  return {kName,
          "Grad-ECLIP (Zhao et al. 2024): gradient-weighted values of the last block(s), read "
          "with one head, times the q.k spatial weight, ReLU; text relevance likewise",
          {{"layers", "how many last vision blocks to read (default 1)"},
           {"text_layers", "how many last text blocks to read (default 1)"}},
          create};
}

}  // namespace clipxai
