#include "clipxai/model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <ATen/ATen.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "clipxai/error.h"
#include "transformer.h"

namespace clipxai {
namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kVocabularyFile = "bpe_simple_vocab_16e6.txt.gz";
constexpr int kWidthPerHead = 64;  // OpenAI's build_model: heads = width / 64
constexpr size_t kMissingNamesShown = 5;

const char* const kBlockParameters[] = {
    "ln_1.weight",          "ln_1.bias",          "attn.in_proj_weight", "attn.in_proj_bias",
    "attn.out_proj.weight", "attn.out_proj.bias", "ln_2.weight",         "ln_2.bias",
    "mlp.c_fc.weight",      "mlp.c_fc.bias",      "mlp.c_proj.weight",   "mlp.c_proj.bias"};

const char* const kTopLevelParameters[] = {"visual.conv1.weight",
                                           "visual.class_embedding",
                                           "visual.positional_embedding",
                                           "visual.ln_pre.weight",
                                           "visual.ln_pre.bias",
                                           "visual.ln_post.weight",
                                           "visual.ln_post.bias",
                                           "visual.proj",
                                           "token_embedding.weight",
                                           "positional_embedding",
                                           "ln_final.weight",
                                           "ln_final.bias",
                                           "text_projection",
                                           "logit_scale"};

const char* const kVisionBlocks = "visual.transformer.resblocks.";
const char* const kTextBlocks = "transformer.resblocks.";

using WeightMap = std::unordered_map<std::string, torch::Tensor>;

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// A TorchScript archive is a zip file; one cut short lacks the complete end-of-central-directory
// record that closes every zip file, which lets the error say "truncated" rather than "garbage".
void check_archive_file(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw model_error(path + ": no such file");
  if (!std::filesystem::is_regular_file(path, error)) throw model_error(path + ": not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw model_error(path + ": cannot be opened for reading");
  const auto size = std::filesystem::file_size(path, error);
  std::string head(4, '\0');
  in.read(head.data(), 4);
  if (size < 4 || head != std::string("PK\x03\x04", 4)) {
    throw model_error(path + ": not a TorchScript archive (not a zip file)");
  }
  // The record: signature, 16 bytes, a 2-byte comment length at offset 20, then the comment.
  constexpr std::uintmax_t kRecordSize = 22;
  const std::uintmax_t tail_size = std::min<std::uintmax_t>(size, kRecordSize + 65535);
  std::string tail(tail_size, '\0');
  in.seekg(static_cast<std::streamoff>(size - tail_size));
  in.read(tail.data(), static_cast<std::streamsize>(tail_size));
  const auto record = tail.rfind(std::string("PK\x05\x06", 4));
  const bool complete = record != std::string::npos && record + kRecordSize <= tail_size &&
                        record + kRecordSize +
                                (static_cast<unsigned char>(tail[record + 20]) |
                                 static_cast<unsigned char>(tail[record + 21]) << 8) ==
                            tail_size;
  if (!complete) throw model_error(path + ": truncated archive (the zip file is cut short)");
}

// Every tensor the module holds — parameters, buffers and plain tensor attributes (traced files
// may keep weights in any of these) — by qualified name, as fp32 contiguous tensors.
WeightMap collect_tensors(const torch::jit::Module& module) {
  WeightMap tensors;
  for (const auto& attribute : module.named_attributes(/*recurse=*/true)) {
    if (!attribute.value.isTensor()) continue;
    tensors.emplace(attribute.name,
                    attribute.value.toTensor().detach().to(torch::kFloat).contiguous());
  }
  return tensors;
}

// Number of blocks under `prefix` ("...resblocks."): one more than the highest index named.
int count_blocks(const WeightMap& weights, const std::string& prefix) {
  int count = 0;
  for (const auto& [name, tensor] : weights) {
    if (!starts_with(name, prefix)) continue;
    const auto index = name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size());
    const auto is_digit = [](unsigned char c) { return std::isdigit(c) != 0; };
    if (!index.empty() && std::all_of(index.begin(), index.end(), is_digit)) {
      count = std::max(count, std::stoi(index) + 1);
    }
  }
  return count;
}

void check_not_resnet(const std::string& path, const WeightMap& weights) {
  for (const auto& [name, tensor] : weights) {
    if (starts_with(name, "visual.layer1.") || starts_with(name, "visual.attnpool.")) {
      throw model_error(path + ": ResNet CLIP models are not supported (found " + name +
                        "); use a ViT CLIP model");
    }
  }
}

void check_parameters_present(const std::string& path, const WeightMap& weights) {
  std::vector<std::string> required(std::begin(kTopLevelParameters), std::end(kTopLevelParameters));
  for (const std::string prefix : {kVisionBlocks, kTextBlocks}) {
    const int blocks = count_blocks(weights, prefix);
    if (blocks == 0) required.push_back(prefix + "0.*");
    for (int block = 0; block < blocks; ++block) {
      for (const char* parameter : kBlockParameters) {
        required.push_back(prefix + std::to_string(block) + "." + parameter);
      }
    }
  }
  std::vector<std::string> missing;
  for (const auto& name : required) {
    if (weights.count(name) == 0) missing.push_back(name);
  }
  if (missing.empty()) return;
  std::string message =
      path + ": not a CLIP ViT archive: missing parameter" + (missing.size() > 1 ? "s " : " ");
  for (size_t i = 0; i < std::min(missing.size(), kMissingNamesShown); ++i) {
    message += (i > 0 ? ", " : "") + missing[i];
  }
  if (missing.size() > kMissingNamesShown) {
    message += " and " + std::to_string(missing.size() - kMissingNamesShown) + " more";
  }
  throw model_error(message);
}

std::string format_shape(at::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Checks that the shapes of a model's tensors agree with its inferred architecture, naming the
// tensor and its expected symbolic shape ("[W, E] = [768, 512]") when they do not.
class ShapeChecker {
 public:
  ShapeChecker(const std::string& path, const WeightMap& weights)
      : path_(path), weights_(weights) {}

  const torch::Tensor& operator()(const std::string& name,
                                  std::vector<std::pair<std::string, int64_t>> dims) const {
    const auto& tensor = weights_.at(name);
    std::vector<int64_t> expected;
    std::string symbols = "[";
    for (const auto& [symbol, size] : dims) {
      symbols += (expected.empty() ? "" : ", ") + symbol;
      expected.push_back(size);
    }
    symbols += "]";
    if (tensor.sizes() != at::IntArrayRef(expected)) {
      throw model_error(path_ + ": " + name + " has shape " + format_shape(tensor.sizes()) +
                        ", expected " + symbols + " = " + format_shape(expected));
    }
    return tensor;
  }

  // A dimension the architecture is inferred from; it must exist and be positive.
  int64_t size(const std::string& name, int64_t dim, int64_t rank) const {
    const auto& tensor = weights_.at(name);
    if (tensor.dim() != rank || tensor.size(dim) <= 0) {
      throw model_error(path_ + ": " + name + " has shape " + format_shape(tensor.sizes()) +
                        ", expected " + std::to_string(rank) + " non-empty dimensions");
    }
    return tensor.size(dim);
  }

  [[noreturn]] void fail(const std::string& what) const { throw model_error(path_ + ": " + what); }

 private:
  const std::string& path_;
  const WeightMap& weights_;
};

void check_blocks(const ShapeChecker& check, const std::string& prefix, int blocks, int64_t width) {
  for (int block = 0; block < blocks; ++block) {
    const auto name = [&](const char* parameter) {
      return prefix + std::to_string(block) + "." + parameter;
    };
    const int64_t mlp = check.size(name("mlp.c_fc.weight"), 0, 2);
    check(name("ln_1.weight"), {{"W", width}});
    check(name("ln_1.bias"), {{"W", width}});
    check(name("attn.in_proj_weight"), {{"3W", 3 * width}, {"W", width}});
    check(name("attn.in_proj_bias"), {{"3W", 3 * width}});
    check(name("attn.out_proj.weight"), {{"W", width}, {"W", width}});
    check(name("attn.out_proj.bias"), {{"W", width}});
    check(name("ln_2.weight"), {{"W", width}});
    check(name("ln_2.bias"), {{"W", width}});
    check(name("mlp.c_fc.weight"), {{"M", mlp}, {"W", width}});
    check(name("mlp.c_fc.bias"), {{"M", mlp}});
    check(name("mlp.c_proj.weight"), {{"W", width}, {"M", mlp}});
    check(name("mlp.c_proj.bias"), {{"W", width}});
  }
}

ModelConfig infer_config(const std::string& path, const WeightMap& weights) {
  const ShapeChecker check(path, weights);
  ModelConfig config;
  config.name = std::filesystem::path(path).stem().string();

  const int64_t width = check.size("visual.conv1.weight", 0, 4);
  const int64_t patch = check.size("visual.conv1.weight", 3, 4);
  check("visual.conv1.weight", {{"W", width}, {"3", 3}, {"P", patch}, {"P", patch}});
  const int64_t tokens = check.size("visual.positional_embedding", 0, 2);
  const auto grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(tokens - 1))));
  if (grid < 1 || grid * grid + 1 != tokens) {
    check.fail("visual.positional_embedding has " + std::to_string(tokens) +
               " rows, expected G*G+1 for a square patch grid");
  }
  const int64_t embed = check.size("text_projection", 1, 2);
  check("visual.class_embedding", {{"W", width}});
  check("visual.positional_embedding", {{"G*G+1", tokens}, {"W", width}});
  check("visual.ln_pre.weight", {{"W", width}});
  check("visual.ln_pre.bias", {{"W", width}});
  check("visual.ln_post.weight", {{"W", width}});
  check("visual.ln_post.bias", {{"W", width}});
  check("visual.proj", {{"W", width}, {"E", embed}});

  const int64_t vocab = check.size("token_embedding.weight", 0, 2);
  const int64_t text_width = check.size("ln_final.weight", 0, 1);
  const int64_t context = check.size("positional_embedding", 0, 2);
  check("token_embedding.weight", {{"V", vocab}, {"Wt", text_width}});
  check("positional_embedding", {{"C", context}, {"Wt", text_width}});
  check("ln_final.bias", {{"Wt", text_width}});
  check("text_projection", {{"Wt", text_width}, {"E", embed}});
  if (weights.at("logit_scale").numel() != 1) {
    check.fail("logit_scale has shape " + format_shape(weights.at("logit_scale").sizes()) +
               ", expected a single value");
  }

  config.vision_layers = count_blocks(weights, kVisionBlocks);
  config.text_layers = count_blocks(weights, kTextBlocks);
  check_blocks(check, kVisionBlocks, config.vision_layers, width);
  check_blocks(check, kTextBlocks, config.text_layers, text_width);

  config.patch_size = static_cast<int>(patch);
  config.grid = static_cast<int>(grid);
  config.input_resolution = static_cast<int>(patch * grid);
  config.vision_width = static_cast<int>(width);
  config.vision_heads = static_cast<int>(width / kWidthPerHead);
  config.embed_dim = static_cast<int>(embed);
  config.context_length = static_cast<int>(context);
  config.vocab_size = static_cast<int>(vocab);
  config.text_width = static_cast<int>(text_width);
  config.text_heads = static_cast<int>(text_width / kWidthPerHead);
  return config;
}

int positive_int(const std::string& path, const nlohmann::json& json, const char* key) {
  const auto& value = json.at(key);
  if (!value.is_number_integer() || value.get<int64_t>() <= 0 ||
      value.get<int64_t>() > std::numeric_limits<int>::max()) {
    throw model_error(path + ": " + kConfigFile + ": \"" + key + "\" must be a positive integer");
  }
  return value.get<int>();
}

std::array<float, 3> colour_triple(const std::string& path, const nlohmann::json& json,
                                   const char* key, bool positive) {
  const auto& value = json.at(key);
  std::array<float, 3> triple{};
  const bool ok = value.is_array() && value.size() == 3 &&
                  std::all_of(value.begin(), value.end(), [&](const nlohmann::json& v) {
                    return v.is_number() && (!positive || v.get<double>() > 0);
                  });
  if (!ok) {
    throw model_error(path + ": " + kConfigFile + ": \"" + key + "\" must be 3 " +
                      (positive ? "positive " : "") + "numbers (R, G, B)");
  }
  for (size_t i = 0; i < 3; ++i) triple[i] = value[i].get<float>();
  return triple;
}

// A start layer in relevance.h's convention: -1 (the last layer only) to layers - 1.
int start_layer(const std::string& path, const nlohmann::json& json, const char* key,
                const char* tower, int layers) {
  const auto& value = json.at(key);
  if (!value.is_number_integer() || value.get<int64_t>() < -1 || value.get<int64_t>() >= layers) {
    throw model_error(path + ": " + kConfigFile + ": \"" + key +
                      "\" must be an integer from -1 to " + std::to_string(layers - 1) + " (the " +
                      tower + " tower has " + std::to_string(layers) +
                      " layers; -1 = the last only), not " + value.dump());
  }
  return value.get<int>();
}

void apply_config_json(const std::string& path, const std::string& text, ModelConfig& config) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw model_error(path + ": " + kConfigFile + " is not valid JSON: " + e.what());
  }
  if (!json.is_object()) throw model_error(path + ": " + kConfigFile + " is not a JSON object");
  if (json.contains("name")) {
    if (!json["name"].is_string()) {
      throw model_error(path + ": " + kConfigFile + ": \"name\" must be a string");
    }
    config.name = json["name"].get<std::string>();
  }
  if (json.contains("vision_heads")) config.vision_heads = positive_int(path, json, "vision_heads");
  if (json.contains("text_heads")) config.text_heads = positive_int(path, json, "text_heads");
  if (json.contains("activation")) {
    const auto& activation = json["activation"];
    if (activation == "quick_gelu") {
      config.activation = Activation::QuickGelu;
    } else if (activation == "gelu") {
      config.activation = Activation::Gelu;
    } else {
      throw model_error(path + ": " + kConfigFile +
                        ": \"activation\" must be \"quick_gelu\" or \"gelu\", not " +
                        activation.dump());
    }
  }
  if (json.contains("image_mean"))
    config.image_mean = colour_triple(path, json, "image_mean", false);
  if (json.contains("image_std")) config.image_std = colour_triple(path, json, "image_std", true);
  if (json.contains("relevance_start_layer")) {
    config.relevance_start_layer =
        start_layer(path, json, "relevance_start_layer", "vision", config.vision_layers);
  }
  if (json.contains("relevance_start_layer_text")) {
    config.relevance_start_layer_text =
        start_layer(path, json, "relevance_start_layer_text", "text", config.text_layers);
  }
}

void check_heads(const std::string& path, const char* tower, int width, int heads) {
  if (heads <= 0 || width % heads != 0) {
    throw model_error(path + ": the " + tower + " width " + std::to_string(width) +
                      " cannot be split into " + std::to_string(heads) +
                      " heads (heads = width / " + std::to_string(kWidthPerHead) +
                      " unless config.json gives \"" + tower + "_heads\")");
  }
}

}  // namespace

std::string to_string(Activation activation) {
  return activation == Activation::Gelu ? "gelu" : "quick_gelu";
}

ClipModel ClipModel::load(const std::string& path) {
  check_archive_file(path);
  torch::jit::ExtraFilesMap extra_files{{kConfigFile, ""}, {kVocabularyFile, ""}};
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, torch::kCPU, extra_files);
  } catch (const c10::Error& e) {
    throw model_error(path + ": not a TorchScript archive (" +
                      first_line(e.what_without_backtrace()) + ")");
  } catch (const std::exception& e) {
    throw model_error(path + ": not a TorchScript archive (" + first_line(e.what()) + ")");
  }

  ClipModel model;
  model.path_ = path;
  model.weights_ = collect_tensors(module);
  check_not_resnet(path, model.weights_);
  check_parameters_present(path, model.weights_);
  model.config_ = infer_config(path, model.weights_);
  if (!extra_files[kConfigFile].empty()) {
    apply_config_json(path, extra_files[kConfigFile], model.config_);
  }
  check_heads(path, "vision", model.config_.vision_width, model.config_.vision_heads);
  check_heads(path, "text", model.config_.text_width, model.config_.text_heads);
  if (!extra_files[kVocabularyFile].empty()) {
    model.embedded_vocabulary_ = std::move(extra_files[kVocabularyFile]);
  }
  model.bind_weights();
  return model;
}

const torch::Tensor& ClipModel::weight(const std::string& name) const {
  const auto found = weights_.find(name);
  if (found == weights_.end()) throw model_error(path_ + ": no parameter named " + name);
  return found->second;
}

void ClipModel::to(const torch::Device& device) {
  for (auto& [name, tensor] : weights_) tensor = tensor.to(device);
  bind_weights();
}

torch::Device ClipModel::device() const { return weight("logit_scale").device(); }

double ClipModel::logit_scale() const { return std::exp(weight("logit_scale").item<double>()); }

void ClipModel::bind_weights() {
  const auto bind = [this](const std::string& prefix, int layers, int heads, bool causal) {
    TransformerWeights transformer;
    transformer.heads = heads;
    transformer.causal = causal;
    transformer.activation = config_.activation;
    for (int layer = 0; layer < layers; ++layer) {
      const auto w = [&](const char* parameter) -> const torch::Tensor& {
        return weight(prefix + std::to_string(layer) + "." + parameter);
      };
      const int64_t width = w("ln_1.weight").size(0);
      ResidualBlockWeights block;
      block.ln_1_weight = w("ln_1.weight");
      block.ln_1_bias = w("ln_1.bias");
      block.q_weight = w("attn.in_proj_weight").narrow(0, 0, width);
      block.q_bias = w("attn.in_proj_bias").narrow(0, 0, width);
      block.kv_weight = w("attn.in_proj_weight").narrow(0, width, 2 * width);
      block.kv_bias = w("attn.in_proj_bias").narrow(0, width, 2 * width);
      block.out_weight = w("attn.out_proj.weight");
      block.out_bias = w("attn.out_proj.bias");
      block.ln_2_weight = w("ln_2.weight");
      block.ln_2_bias = w("ln_2.bias");
      block.fc_weight = w("mlp.c_fc.weight");
      block.fc_bias = w("mlp.c_fc.bias");
      block.proj_weight = w("mlp.c_proj.weight");
      block.proj_bias = w("mlp.c_proj.bias");
      transformer.blocks.push_back(std::move(block));
    }
    return transformer;
  };
  vision_ = bind(kVisionBlocks, config_.vision_layers, config_.vision_heads, false);
  text_ = bind(kTextBlocks, config_.text_layers, config_.text_heads, true);
}

torch::Tensor ClipModel::embed_image(const torch::Tensor& pixels) const {
  const int resolution = config_.input_resolution;
  if (pixels.dim() != 4 || pixels.size(1) != 3 || pixels.size(2) != resolution ||
      pixels.size(3) != resolution) {
    throw input_error(path_ + ": expected images of shape [B, 3, " + std::to_string(resolution) +
                      ", " + std::to_string(resolution) + "], got " + format_shape(pixels.sizes()));
  }
  const int64_t batch = pixels.size(0);
  const int64_t width = config_.vision_width;
  const auto patches = at::conv2d(pixels.to(device(), torch::kFloat), weight("visual.conv1.weight"),
                                  {}, config_.patch_size)
                           .flatten(2)
                           .transpose(1, 2);
  const auto class_token =
      weight("visual.class_embedding").view({1, 1, width}).expand({batch, 1, width});
  const auto tokens = at::cat({class_token, patches}, 1) + weight("visual.positional_embedding");
  return at::layer_norm(tokens, {width}, weight("visual.ln_pre.weight"),
                        weight("visual.ln_pre.bias"), 1e-5);
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
  const auto& positions = weight("positional_embedding");
  return at::embedding(weight("token_embedding.weight"), on_device) +
         positions.narrow(0, 0, ids.size(1));
}

torch::Tensor ClipModel::project_image(const torch::Tensor& class_states) const {
  return at::matmul(
      at::layer_norm(class_states, {config_.vision_width}, weight("visual.ln_post.weight"),
                     weight("visual.ln_post.bias"), 1e-5),
      weight("visual.proj"));
}

torch::Tensor ClipModel::project_text(const torch::Tensor& eot_states) const {
  return at::matmul(at::layer_norm(eot_states, {config_.text_width}, weight("ln_final.weight"),
                                   weight("ln_final.bias"), 1e-5),
                    weight("text_projection"));
}

torch::Tensor ClipModel::encode_image(const torch::Tensor& pixels) const {
  torch::NoGradGuard no_grad;
  const auto tokens = embed_image(pixels);
  const auto class_row = torch::zeros({1}, tokens.options().dtype(torch::kLong));
  return project_image(
      run_transformer(vision_, tokens, class_row, tokens.size(0), config_.vision_layers, nullptr));
}

torch::Tensor ClipModel::encode_text(const torch::Tensor& ids) const {
  torch::NoGradGuard no_grad;
  const auto batch = trim_to_longest_eot(ids.to(device(), torch::kLong));
  return project_text(run_transformer(text_, embed_text(batch.ids), batch.eot, ids.size(0),
                                      config_.text_layers, nullptr));
}

}  // namespace clipxai
