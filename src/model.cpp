#include "clipxai/model.h"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include "clipxai/checkpoint.h"
#include "clipxai/error.h"
#include "transformer.h"

namespace clipxai {
namespace {

std::string format_shape(at::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

void transform_blocks(TransformerWeights& transformer,
                      const std::function<torch::Tensor(const torch::Tensor&)>& change) {
  for (ResidualBlockWeights& w : transformer.blocks) {
    for (torch::Tensor* tensor :
         {&w.ln_1_weight, &w.ln_1_bias, &w.q_weight, &w.q_bias, &w.kv_weight, &w.kv_bias,
          &w.out_weight, &w.out_bias, &w.ln_2_weight, &w.ln_2_bias, &w.fc_weight, &w.fc_bias,
          &w.proj_weight, &w.proj_bias}) {
      *tensor = change(*tensor);
    }
  }
}

}  // namespace

std::string to_string(Activation activation) {
  return activation == Activation::Gelu ? "gelu" : "quick_gelu";
}

bool is_valid_start_layer(int64_t start_layer, int layers) {
  return start_layer >= -1 && start_layer < layers;
}

void transform_tensors(ClipWeights& weights,
                       const std::function<torch::Tensor(const torch::Tensor&)>& change) {
  VisionWeights& v = weights.vision;
  TextWeights& t = weights.text;
  for (torch::Tensor* tensor :
       {&v.conv1, &v.class_embedding, &v.positional_embedding, &v.ln_pre_weight, &v.ln_pre_bias,
        &v.ln_post_weight, &v.ln_post_bias, &v.proj, &t.token_embedding, &t.positional_embedding,
        &t.ln_final_weight, &t.ln_final_bias, &t.projection, &weights.logit_scale}) {
    *tensor = change(*tensor);
  }
  transform_blocks(v.transformer, change);
  transform_blocks(t.transformer, change);
}

ClipModel ClipModel::load(const std::string& path, const LoadOptions& options) {
  Checkpoint checkpoint = read_checkpoint(path, options);
  ClipModel model;
  model.path_ = path;
  model.format_ = std::move(checkpoint.format);
  model.config_ = std::move(checkpoint.config);
  model.method_defaults_ = checkpoint.method_defaults;
  model.embedded_vocabulary_ = std::move(checkpoint.vocabulary);
  model.fact_sources_ = std::move(checkpoint.fact_sources);
  model.weights_ = std::move(checkpoint.weights);
  return model;
}

ClipModel ClipModel::with_weights(ClipWeights weights) const {
  ClipModel copy = *this;
  copy.weights_ = std::move(weights);
  return copy;
}

void ClipModel::to(const torch::Device& device) {
  transform_tensors(weights_, [&](const torch::Tensor& tensor) { return tensor.to(device); });
}

torch::Device ClipModel::device() const { return weights_.logit_scale.device(); }

double ClipModel::logit_scale() const { return std::exp(weights_.logit_scale.item<double>()); }

torch::Tensor ClipModel::embed_image(const torch::Tensor& pixels) const {
  const int resolution = config_.input_resolution;
  if (pixels.dim() != 4 || pixels.size(1) != 3 || pixels.size(2) != resolution ||
      pixels.size(3) != resolution) {
    throw input_error(path_ + ": expected images of shape [B, 3, " + std::to_string(resolution) +
                      ", " + std::to_string(resolution) + "], got " + format_shape(pixels.sizes()));
  }
  const VisionWeights& w = weights_.vision;
  const int64_t batch = pixels.size(0);
  const int64_t width = config_.vision_width;
  const auto patches =
      at::conv2d(pixels.to(device(), torch::kFloat), w.conv1, {}, config_.patch_size)
          .flatten(2)
          .transpose(1, 2);
  const auto class_token = w.class_embedding.view({1, 1, width}).expand({batch, 1, width});
  const auto tokens = at::cat({class_token, patches}, 1) + w.positional_embedding;
  return at::layer_norm(tokens, {width}, w.ln_pre_weight, w.ln_pre_bias, 1e-5);
}

torch::Tensor ClipModel::embed_text(const torch::Tensor& ids) const {
  if (ids.dim() != 2 || ids.size(1) < 1 || ids.size(1) > config_.context_length) {
    throw input_error(path_ + ": expected token ids of shape [B, T] with 1 <= T <= " +
                      std::to_string(config_.context_length) + ", got " +
                      format_shape(ids.sizes()));
  }
  const auto on_device = ids.to(device(), torch::kLong);
  if (on_device.min().item<int64_t>() < 0 ||
      on_device.max().item<int64_t>() >= config_.vocab_size) {
    throw input_error(path_ + ": token ids must lie in [0, " + std::to_string(config_.vocab_size) +
                      ") (is the tokenizer vocabulary the model's?)");
  }
  const TextWeights& w = weights_.text;
  return at::embedding(w.token_embedding, on_device) +
         w.positional_embedding.narrow(0, 0, ids.size(1));
}

torch::Tensor ClipModel::project_image(const torch::Tensor& class_states) const {
  const VisionWeights& w = weights_.vision;
  return at::matmul(
      at::layer_norm(class_states, {config_.vision_width}, w.ln_post_weight, w.ln_post_bias, 1e-5),
      w.proj);
}

torch::Tensor ClipModel::project_text(const torch::Tensor& eot_states) const {
  const TextWeights& w = weights_.text;
  return at::matmul(
      at::layer_norm(eot_states, {config_.text_width}, w.ln_final_weight, w.ln_final_bias, 1e-5),
      w.projection);
}

torch::Tensor ClipModel::encode_image(const torch::Tensor& pixels) const {
  torch::NoGradGuard no_grad;
  const auto tokens = embed_image(pixels);
  const auto class_row = torch::zeros({1}, tokens.options().dtype(torch::kLong));
  return project_image(run_transformer(vision_transformer(), tokens, class_row, tokens.size(0),
                                       config_.vision_layers, nullptr));
}

torch::Tensor ClipModel::encode_text(const torch::Tensor& ids, const torch::Tensor& eot) const {
  torch::NoGradGuard no_grad;
  const auto batch =
      trim_to_longest_eot(ids.to(device(), torch::kLong), eot.to(device(), torch::kLong));
  return project_text(run_transformer(text_transformer(), embed_text(batch.ids), batch.eot,
                                      ids.size(0), config_.text_layers, nullptr));
}

torch::Tensor ClipModel::encode_text(const std::vector<TokenizedText>& prompts) const {
  const TextBatch batch = text_batch(prompts, config_.context_length);
  return encode_text(batch.ids, batch.eot);
}

}  // namespace clipxai
