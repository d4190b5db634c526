#include "clipxai/relevance.h"

#include <algorithm>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "clipxai/error.h"
#include "transformer.h"

namespace clipxai {
namespace {

// The notebook's convention: -1 = the last layer only, N = from layer N on.
int resolve_start_layer(int start_layer, int layers, const std::string& tower) {
  if (start_layer == -1) return layers - 1;
  if (start_layer < -1 || start_layer >= layers) {
    throw usage_error("start layer " + std::to_string(start_layer) + " is out of range for the " +
                      tower + " tower of " + std::to_string(layers) +
                      " layers (-1 = last layer only, 0.." + std::to_string(layers - 1) +
                      " = from that layer on)");
  }
  return start_layer;
}

// The prompts' context slots as one [P, longest] batch, zero-padded.
torch::Tensor prompt_ids(const std::vector<TokenizedText>& prompts, int context_length) {
  size_t longest = 0;
  for (const auto& prompt : prompts) {
    if (prompt.ids.empty() || prompt.ids.size() > static_cast<size_t>(context_length)) {
      throw input_error("prompt \"" + prompt.text + "\" has " + std::to_string(prompt.ids.size()) +
                        " token slots; the model's context holds 1.." +
                        std::to_string(context_length));
    }
    longest = std::max(longest, prompt.ids.size());
  }
  auto ids = torch::zeros({static_cast<int64_t>(prompts.size()), static_cast<int64_t>(longest)},
                          torch::kLong);
  for (size_t p = 0; p < prompts.size(); ++p) {
    ids[static_cast<int64_t>(p)]
        .narrow(0, 0, static_cast<int64_t>(prompts[p].ids.size()))
        .copy_(torch::tensor(prompts[p].ids, torch::kLong));
  }
  return ids;
}

// A PhaseTimer that first waits for the device: GPU kernels run asynchronously, and their time
// belongs to the phase that launched them.
class DevicePhaseTimer {
 public:
  DevicePhaseTimer(Timings* timings, Phase phase, const torch::Device& device)
      : timer_(timings, phase),
        synchronize_(timings != nullptr && device.is_cuda()),
        device_index_(device.index()) {}
  ~DevicePhaseTimer() {
    if (synchronize_) torch::cuda::synchronize(device_index_);
  }

 private:
  PhaseTimer timer_;
  bool synchronize_;
  int64_t device_index_;
};

torch::Tensor unit(const torch::Tensor& features) { return features / features.norm(2, -1, true); }

// Rows `rows` of R after R <- R + Abar.R over the kept layers, from R = I, with
// Abar = mean over heads of ReLU(grad (.) A). The last layer's probabilities hold only the output
// row ([P, H, 1, N]); every other row of its Abar is zero. Returns [P, N].
torch::Tensor relevance_rows(const std::vector<torch::Tensor>& probabilities,
                             const std::vector<torch::Tensor>& gradients, size_t first,
                             const torch::Tensor& rows) {
  const auto weighted = [&](size_t layer) {
    return (gradients[first + layer] * probabilities[layer]).clamp_min(0).mean(1);
  };
  const auto& last = probabilities.back();
  const int64_t tokens = last.size(-1);
  auto relevance = torch::eye(tokens, last.options()).expand({last.size(0), tokens, tokens});
  for (size_t layer = 0; layer + 1 < probabilities.size(); ++layer) {
    relevance = relevance + torch::bmm(weighted(layer), relevance);
  }
  return (select_rows(relevance, rows) + torch::bmm(weighted(probabilities.size() - 1), relevance))
      .squeeze(1);
}

}  // namespace

StartLayers resolve_start_layers(const RelevanceOptions& options, const ModelConfig& config) {
  return {resolve_start_layer(options.start_layer.value_or(config.relevance_start_layer),
                              config.vision_layers, "vision"),
          resolve_start_layer(options.start_layer_text.value_or(config.relevance_start_layer_text),
                              config.text_layers, "text")};
}

std::string describe_layers(int start_layer, int layers) {
  const int last = layers - 1;
  if (start_layer == last) return "last layer (" + std::to_string(last) + ")";
  const std::string range = std::to_string(start_layer) + "-" + std::to_string(last);
  return start_layer == 0 ? "all layers (" + range + ")" : "layers " + range;
}

PreparedPrompts prepare_prompts(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                                const RelevanceOptions& options, Timings* timings) {
  if (prompts.empty()) throw usage_error("no prompts to explain");
  const auto& config = model.config();
  PreparedPrompts prepared;
  const StartLayers start = resolve_start_layers(options, config);
  prepared.start_layer = start.vision;
  prepared.start_layer_text = start.text;
  auto text = trim_to_longest_eot(prompt_ids(prompts, config.context_length).to(model.device()));
  DevicePhaseTimer timer(timings, Phase::Text, model.device());
  torch::NoGradGuard no_grad;
  prepared.text_states = run_blocks(model.text_transformer(), model.embed_text(text.ids), 0,
                                    prepared.start_layer_text);
  prepared.eot = std::move(text.eot);
  return prepared;
}

std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const std::vector<TokenizedText>& prompts,
                                           const RelevanceOptions& options) {
  return explain_image(model, pixels, prepare_prompts(model, prompts, options));
}

std::vector<PromptRelevance> explain_image(const ClipModel& model, const torch::Tensor& pixels,
                                           const PreparedPrompts& prompts, Timings* timings) {
  const auto& config = model.config();
  const int64_t count = prompts.eot.size(0);

  // Embeddings need no gradient; run_transformer branches into per-prompt copies with autograd
  // only from the start layers on.
  std::vector<torch::Tensor> vision_probabilities;
  std::vector<torch::Tensor> text_probabilities;
  const auto class_row =
      torch::zeros({1}, torch::TensorOptions(torch::kLong).device(model.device()));
  torch::Tensor image_features;
  {
    DevicePhaseTimer timer(timings, Phase::Vision, model.device());
    torch::Tensor image_tokens;
    {
      torch::NoGradGuard no_grad;
      image_tokens = model.embed_image(pixels.unsqueeze(0));
    }
    image_features =
        model.project_image(run_transformer(model.vision_transformer(), image_tokens, class_row,
                                            count, prompts.start_layer, &vision_probabilities));
  }
  torch::Tensor text_features;
  {
    DevicePhaseTimer timer(timings, Phase::Text, model.device());
    text_features = model.project_text(
        run_transformer(model.text_transformer(), prompts.text_states, prompts.eot, count,
                        prompts.start_layer_text, &text_probabilities, prompts.start_layer_text));
  }
  DevicePhaseTimer timer(timings, Phase::Relevance, model.device());
  const auto cosines = (unit(image_features) * unit(text_features)).sum(-1);
  const auto logits = cosines * model.logit_scale();

  // One backward pass: the prompts' scores are independent, so the gradient of their sum with
  // respect to each prompt's own attention copies is that prompt's gradient.
  std::vector<torch::Tensor> kept = vision_probabilities;
  kept.insert(kept.end(), text_probabilities.begin(), text_probabilities.end());
  const auto gradients = torch::autograd::grad({logits.sum()}, kept);

  torch::NoGradGuard no_grad;
  const int grid = config.grid;
  const auto image_relevance =
      relevance_rows(vision_probabilities, gradients, 0, class_row).narrow(1, 1, grid * grid);
  const auto grids = image_relevance.reshape({count, grid, grid}).to(torch::kCPU).contiguous();
  const auto text_relevance =
      relevance_rows(text_probabilities, gradients, vision_probabilities.size(), prompts.eot)
          .to(torch::kCPU);
  const auto eot = prompts.eot.to(torch::kCPU);
  const auto logits_cpu = logits.detach().to(torch::kCPU, torch::kDouble);
  const auto probabilities = torch::softmax(logits_cpu, 0);
  const auto cosines_cpu = cosines.detach().to(torch::kCPU, torch::kDouble);

  std::vector<PromptRelevance> results(static_cast<size_t>(count));
  for (int64_t p = 0; p < count; ++p) {
    auto& result = results[static_cast<size_t>(p)];
    result.logit = logits_cpu[p].item<double>();
    result.cosine = cosines_cpu[p].item<double>();
    result.probability = probabilities[p].item<double>();
    result.grid = grids[p];
    // Tokens strictly between SOT (slot 0) and EOT, normalised to sum 1. Relevance is never
    // negative, so a zero sum means every token has zero relevance; they stay zero.
    const int64_t tokens = std::max<int64_t>(eot[p].item<int64_t>() - 1, 0);
    const auto row = text_relevance[p].narrow(0, 1, tokens);
    const double sum = row.sum().item<double>();
    const auto normalised = (sum > 0 ? row / sum : row).contiguous();
    result.token_relevance.assign(normalised.data_ptr<float>(),
                                  normalised.data_ptr<float>() + tokens);
  }
  return results;
}

}  // namespace clipxai
