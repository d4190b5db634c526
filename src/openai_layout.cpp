#include "openai_layout.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "clipxai/error.h"

namespace clipxai {
namespace {

constexpr const char* kConfigFile = "config.json";
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

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Number of blocks under `prefix` ("...resblocks."): one more than the highest index named.
int count_blocks(const NamedTensors& weights, const std::string& prefix) {
  int count = 0;
  for (const auto& [name, tensor] : weights) {
    if (!starts_with(name, prefix)) continue;
    const auto index = name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size());
    const auto is_digit = [](unsigned char c) { return std::isdigit(c) != 0; };
    if (!index.empty() && index.size() < 7 && std::all_of(index.begin(), index.end(), is_digit)) {
      count = std::max(count, std::stoi(index) + 1);
    }
  }
  return count;
}

void check_not_resnet(const std::string& path, const NamedTensors& weights) {
  for (const auto& [name, tensor] : weights) {
    if (starts_with(name, "visual.layer1.") || starts_with(name, "visual.attnpool.")) {
      throw model_error(path + ": ResNet CLIP models are not supported (found " + name +
                        "); use a ViT CLIP model");
    }
  }
}

void check_parameters_present(const std::string& path, const NamedTensors& weights) {
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
// tensor and its expected symbolic shape ("[W, E] = [768, 512]") when they do not, and hands out
// the checked tensors.
class ShapeChecker {
 public:
  ShapeChecker(const std::string& path, const NamedTensors& weights)
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
  const NamedTensors& weights_;
};

TransformerWeights read_blocks(const ShapeChecker& check, const std::string& prefix, int blocks,
                               int64_t width, bool causal) {
  TransformerWeights transformer;
  transformer.causal = causal;
  for (int block = 0; block < blocks; ++block) {
    const auto name = [&](const char* parameter) {
      return prefix + std::to_string(block) + "." + parameter;
    };
    const int64_t mlp = check.size(name("mlp.c_fc.weight"), 0, 2);
    const torch::Tensor& in_proj_weight =
        check(name("attn.in_proj_weight"), {{"3W", 3 * width}, {"W", width}});
    const torch::Tensor& in_proj_bias = check(name("attn.in_proj_bias"), {{"3W", 3 * width}});
    ResidualBlockWeights w;
    w.ln_1_weight = check(name("ln_1.weight"), {{"W", width}});
    w.ln_1_bias = check(name("ln_1.bias"), {{"W", width}});
    w.q_weight = in_proj_weight.narrow(0, 0, width).contiguous();
    w.q_bias = in_proj_bias.narrow(0, 0, width).contiguous();
    w.kv_weight = in_proj_weight.narrow(0, width, 2 * width).contiguous();
    w.kv_bias = in_proj_bias.narrow(0, width, 2 * width).contiguous();
    w.out_weight = check(name("attn.out_proj.weight"), {{"W", width}, {"W", width}});
    w.out_bias = check(name("attn.out_proj.bias"), {{"W", width}});
    w.ln_2_weight = check(name("ln_2.weight"), {{"W", width}});
    w.ln_2_bias = check(name("ln_2.bias"), {{"W", width}});
    w.fc_weight = check(name("mlp.c_fc.weight"), {{"M", mlp}, {"W", width}});
    w.fc_bias = check(name("mlp.c_fc.bias"), {{"M", mlp}});
    w.proj_weight = check(name("mlp.c_proj.weight"), {{"W", width}, {"M", mlp}});
    w.proj_bias = check(name("mlp.c_proj.bias"), {{"W", width}});
    transformer.blocks.push_back(std::move(w));
  }
  return transformer;
}

// The architecture inferred from the shapes, and the weights bound to it.
void read_weights(const std::string& path, const NamedTensors& weights, Checkpoint& checkpoint) {
  const ShapeChecker check(path, weights);
  ModelConfig& config = checkpoint.config;
  ClipWeights& out = checkpoint.weights;
  config.name = std::filesystem::path(path).stem().string();

  const int64_t width = check.size("visual.conv1.weight", 0, 4);
  const int64_t patch = check.size("visual.conv1.weight", 3, 4);
  out.vision.conv1 =
      check("visual.conv1.weight", {{"W", width}, {"3", 3}, {"P", patch}, {"P", patch}});
  const int64_t tokens = check.size("visual.positional_embedding", 0, 2);
  const auto grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(tokens - 1))));
  if (grid < 1 || grid * grid + 1 != tokens) {
    check.fail("visual.positional_embedding has " + std::to_string(tokens) +
               " rows, expected G*G+1 for a square patch grid");
  }
  const int64_t embed = check.size("text_projection", 1, 2);
  out.vision.class_embedding = check("visual.class_embedding", {{"W", width}});
  out.vision.positional_embedding =
      check("visual.positional_embedding", {{"G*G+1", tokens}, {"W", width}});
  out.vision.ln_pre_weight = check("visual.ln_pre.weight", {{"W", width}});
  out.vision.ln_pre_bias = check("visual.ln_pre.bias", {{"W", width}});
  out.vision.ln_post_weight = check("visual.ln_post.weight", {{"W", width}});
  out.vision.ln_post_bias = check("visual.ln_post.bias", {{"W", width}});
  out.vision.proj = check("visual.proj", {{"W", width}, {"E", embed}});

  const int64_t vocab = check.size("token_embedding.weight", 0, 2);
  const int64_t text_width = check.size("ln_final.weight", 0, 1);
  const int64_t context = check.size("positional_embedding", 0, 2);
  out.text.token_embedding = check("token_embedding.weight", {{"V", vocab}, {"Wt", text_width}});
  out.text.positional_embedding =
      check("positional_embedding", {{"C", context}, {"Wt", text_width}});
  out.text.ln_final_weight = weights.at("ln_final.weight");
  out.text.ln_final_bias = check("ln_final.bias", {{"Wt", text_width}});
  out.text.projection = check("text_projection", {{"Wt", text_width}, {"E", embed}});
  out.logit_scale = weights.at("logit_scale");
  if (out.logit_scale.numel() != 1) {
    check.fail("logit_scale has shape " + format_shape(out.logit_scale.sizes()) +
               ", expected a single value");
  }
  out.logit_scale = out.logit_scale.reshape({});

  config.vision_layers = count_blocks(weights, kVisionBlocks);
  config.text_layers = count_blocks(weights, kTextBlocks);
  out.vision.transformer = read_blocks(check, kVisionBlocks, config.vision_layers, width, false);
  out.text.transformer = read_blocks(check, kTextBlocks, config.text_layers, text_width, true);

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

int start_layer(const std::string& path, const nlohmann::json& json, const char* key,
                const char* tower, int layers) {
  const auto& value = json.at(key);
  if (!value.is_number_integer() || !is_valid_start_layer(value.get<int64_t>(), layers)) {
    throw model_error(path + ": " + kConfigFile + ": \"" + key +
                      "\" must be an integer from -1 to " + std::to_string(layers - 1) + " (the " +
                      tower + " tower has " + std::to_string(layers) +
                      " layers; -1 = the last only), not " + value.dump());
  }
  return value.get<int>();
}

void apply_config_json(const std::string& path, const std::string& text, Checkpoint& checkpoint) {
  ModelConfig& config = checkpoint.config;
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
  if (json.contains("image_mean")) {
    config.image_mean = colour_triple(path, json, "image_mean", false);
  }
  if (json.contains("image_std")) config.image_std = colour_triple(path, json, "image_std", true);
  if (json.contains("relevance_start_layer")) {
    checkpoint.method_defaults.relevance_start_layer =
        start_layer(path, json, "relevance_start_layer", "vision", config.vision_layers);
  }
  if (json.contains("relevance_start_layer_text")) {
    checkpoint.method_defaults.relevance_start_layer_text =
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

Checkpoint checkpoint_from_openai_names(const std::string& path, const NamedTensors& tensors,
                                        const std::string& config_json) {
  check_not_resnet(path, tensors);
  check_parameters_present(path, tensors);
  Checkpoint checkpoint;
  read_weights(path, tensors, checkpoint);
  if (!config_json.empty()) apply_config_json(path, config_json, checkpoint);
  ModelConfig& config = checkpoint.config;
  check_heads(path, "vision", config.vision_width, config.vision_heads);
  check_heads(path, "text", config.text_width, config.text_heads);
  for (TransformerWeights* transformer :
       {&checkpoint.weights.vision.transformer, &checkpoint.weights.text.transformer}) {
    transformer->activation = config.activation;
  }
  checkpoint.weights.vision.transformer.heads = config.vision_heads;
  checkpoint.weights.text.transformer.heads = config.text_heads;
  return checkpoint;
}

}  // namespace clipxai
