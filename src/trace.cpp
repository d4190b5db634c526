#include "clipxai/trace.h"

#include <optional>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "clipxai/error.h"
#include "method_tools.h"
#include "transformer.h"

namespace clipxai {
namespace {

// `first` in [lowest, layers].
void check_first_block(int first, int layers, const char* tower, int lowest = 0) {
  if (first < lowest || first > layers) {
    throw Error(ErrorCategory::Internal, std::string("trace request: first recorded ") + tower +
                                             " block " + std::to_string(first) + " of " +
                                             std::to_string(layers));
  }
}

// The block where the image's gradient-free start ends (ImageStates::first_block): the first
// recorded one, but never past the last, which always runs in the trace (computing only the class
// row). Throws as check_first_block for a request whose vision blocks lie outside the tower.
int vision_start_end(const TraceRequest& request, const ModelConfig& config) {
  check_first_block(request.vision_from, config.vision_layers, "vision");
  const int end = std::min(request.vision_from, config.vision_layers - 1);
  check_first_block(request.vision_state_at, end, "vision state", -1);
  return end;
}

}  // namespace

DevicePhaseTimer::DevicePhaseTimer(Timings* timings, Phase phase, const torch::Device& device)
    : timer_(timings, phase),
      synchronize_(timings != nullptr && device.is_cuda()),
      device_index_(device.index()) {}

DevicePhaseTimer::~DevicePhaseTimer() {
  if (synchronize_) torch::cuda::synchronize(device_index_);
}

torch::Tensor explained_score(const torch::Tensor& similarity, const torch::Tensor& image_features,
                              const torch::Tensor& contrast, double scale) {
  if (!contrast.defined()) return similarity;
  return similarity - scale * (unit_rows(image_features) * contrast).sum(-1);
}

PreparedText prepare_text(const ClipModel& model, const std::vector<TokenizedText>& prompts,
                          const TraceRequest& request, Timings* timings,
                          const TokenizedText* contrast) {
  if (prompts.empty()) throw usage_error("no prompts to explain");
  const ModelConfig& config = model.config();
  vision_start_end(request, config);
  check_first_block(request.text_from, config.text_layers, "text");
  check_first_block(request.text_state_at, config.text_layers - 1, "text state", -1);
  TextBatch text = text_batch(prompts, config.context_length);
  DevicePhaseTimer timer(timings, Phase::Text, model.device());
  torch::NoGradGuard no_grad;
  PreparedText prepared;
  prepared.request = request;
  prepared.blocks_applied = std::min(request.text_from, config.text_layers - 1);
  if (request.text_state_at >= 0) {
    prepared.blocks_applied = std::min(prepared.blocks_applied, request.text_state_at);
  }
  const auto& transformer = model.text_transformer();
  prepared.states = run_blocks(transformer, model.embed_text(text.ids), 0, prepared.blocks_applied);
  if (request.text_state_at >= 0) {
    prepared.text_state =
        run_blocks(transformer, prepared.states, prepared.blocks_applied, request.text_state_at);
  }
  prepared.eot = text.eot.to(model.device());
  if (contrast != nullptr) {
    TextBatch contrast_text = text_batch({*contrast}, config.context_length);
    prepared.contrast = unit_rows(model.encode_text(contrast_text.ids.to(model.device()),
                                                    contrast_text.eot.to(model.device())));
  }
  return prepared;
}

ImageStates ImageStates::image(int64_t index) const {
  return {states.narrow(0, index, 1), first_block,
          vision_state.defined() ? vision_state.narrow(0, index, 1) : torch::Tensor()};
}

ImageStates prepare_images(const ClipModel& model, const torch::Tensor& pixels,
                           const TraceRequest& request, Timings* timings) {
  ImageStates images;
  images.first_block = vision_start_end(request, model.config());
  DevicePhaseTimer timer(timings, Phase::Vision, model.device());
  torch::NoGradGuard no_grad;
  images.states = model.embed_image(pixels);
  int applied = 0;
  if (request.vision_state_at >= 0) {
    images.vision_state =
        run_blocks(model.vision_transformer(), images.states, 0, request.vision_state_at);
    images.states = images.vision_state;
    applied = request.vision_state_at;
  }
  images.states =
      run_blocks(model.vision_transformer(), images.states, applied, images.first_block);
  return images;
}

ForwardTrace trace_forward(const ClipModel& model, const ImageStates& image,
                           const PreparedText& text, Timings* timings) {
  const TraceRequest& request = text.request;
  const int64_t count = text.eot.size(0);
  std::optional<torch::NoGradGuard> no_grad;
  if (!request.gradients) no_grad.emplace();

  ForwardTrace trace;
  trace.eot = text.eot;
  trace.vision_state = image.vision_state;
  const auto class_row =
      torch::zeros({1}, torch::TensorOptions(torch::kLong).device(model.device()));
  torch::Tensor image_features;
  {
    DevicePhaseTimer timer(timings, Phase::Vision, model.device());
    image_features = model.project_image(run_transformer(
        model.vision_transformer(), image.states, class_row, count, request.vision_from,
        &trace.vision_attention, image.first_block, request.gradients));
  }
  torch::Tensor text_features;
  {
    DevicePhaseTimer timer(timings, Phase::Text, model.device());
    text_features = model.project_text(run_transformer(model.text_transformer(), text.states,
                                                       text.eot, count, request.text_from,
                                                       &trace.text_attention, text.blocks_applied));
  }
  DevicePhaseTimer timer(timings, Phase::Relevance, model.device());
  const auto cosines = (unit_rows(image_features) * unit_rows(text_features)).sum(-1);
  const auto logits = cosines * model.logit_scale();
  trace.image_features = unit_rows(image_features.narrow(0, 0, 1)).detach();
  trace.text_features = unit_rows(text_features).detach();
  trace.contrast = text.contrast;
  trace.text_state = text.text_state;
  trace.prompt_set_features = text.prompt_set_features;
  trace.first_prompt = text.first_prompt;
  if (request.gradients) {
    std::vector<torch::Tensor> recorded = trace.vision_attention;
    recorded.insert(recorded.end(), trace.text_attention.begin(), trace.text_attention.end());
    const auto score = explained_score(logits, image_features, text.contrast, model.logit_scale());
    std::vector<torch::Tensor> gradients = torch::autograd::grad({score.sum()}, recorded);
    const auto vision_end = gradients.begin() + static_cast<int64_t>(trace.vision_attention.size());
    trace.vision_gradients.assign(gradients.begin(), vision_end);
    trace.text_gradients.assign(vision_end, gradients.end());
    for (std::vector<torch::Tensor>* attention : {&trace.vision_attention, &trace.text_attention}) {
      for (torch::Tensor& probabilities : *attention) probabilities = probabilities.detach();
    }
  }
  trace.logits = logits.detach();
  trace.cosines = cosines.detach();
  return trace;
}

}  // namespace clipxai
