#include "openai_layout.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "checkpoint_support.h"
#include "clipxai/error.h"

namespace clipxai {
namespace {

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

}  // namespace

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

namespace {

// Other CLIP-like architectures whose checkpoints share OpenAI's names, each recognised by a
// tensor only it has.
struct UnsupportedArchitecture {
  const char* name_prefix;  // or the whole name
  const char* architecture;
};
const UnsupportedArchitecture kUnsupportedArchitectures[] = {
    {"visual.layer1.", "ResNet CLIP models are not supported"},
    {"visual.attnpool.", "ResNet CLIP models are not supported"},
    {"logit_bias", "SigLIP models (a sigmoid loss with a logit bias) are not supported"},
    {"text_decoder.", "CoCa models (a captioning decoder) are not supported"},
    {"visual.attn_pool.", "attention-pooled vision towers (CoCa) are not supported"},
    {"visual.trunk.", "timm vision towers (EVA and others) are not supported"},
};

void check_supported(const std::string& path, const NamedTensors& weights) {
  for (const auto& [name, tensor] : weights) {
    for (const auto& unsupported : kUnsupportedArchitectures) {
      if (starts_with(name, unsupported.name_prefix)) {
        throw model_error(path + ": " + unsupported.architecture + " (found " + name +
                          "); use a ViT CLIP model");
      }
    }
    if (name.find(".ls_1.") != std::string::npos || name.find(".ls_2.") != std::string::npos) {
      throw model_error(path + ": blocks with layer scale are not supported (found " + name +
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
      path + ": not a CLIP ViT checkpoint: missing parameter" + (missing.size() > 1 ? "s " : " ");
  for (size_t i = 0; i < std::min(missing.size(), kMissingNamesShown); ++i) {
    message += (i > 0 ? ", " : "") + missing[i];
  }
  if (missing.size() > kMissingNamesShown) {
    message += " and " + std::to_string(missing.size() - kMissingNamesShown) + " more";
  }
  throw model_error(message);
}

// A model with NaN or infinite weights would explain nothing yet report success with p = nan.
void check_finite(const std::string& path, const NamedTensors& weights) {
  std::vector<std::string> bad;
  for (const auto& [name, tensor] : weights) {
    if (!tensor.is_floating_point() || tensor.numel() == 0) continue;
    // One reduction pass without a mask the size of the tensor: the extremes are NaN when any
    // element is, and infinite when any element is.
    const auto [lowest, highest] = torch::aminmax(tensor);
    if (!std::isfinite(lowest.item<double>()) || !std::isfinite(highest.item<double>())) {
      bad.push_back(name);
    }
  }
  if (bad.empty()) return;
  std::sort(bad.begin(), bad.end());
  throw model_error(path + ": " + bad.front() + " holds NaN or infinite values" +
                    (bad.size() > 1 ? " (and " + std::to_string(bad.size() - 1) + " more tensors)"
                                    : std::string()));
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

int checked_start_layer(const std::string& path, const StatedFacts& facts, const char* key,
                        const std::optional<int64_t>& value, const char* tower, int layers) {
  if (!value) return -1;
  if (!is_valid_start_layer(*value, layers)) {
    throw model_error(path + ": " + facts.sources.at(key) + " must be an integer from -1 to " +
                      std::to_string(layers - 1) + " (the " + tower + " tower has " +
                      std::to_string(layers) + " layers; -1 = the last only), not " +
                      std::to_string(*value));
  }
  return static_cast<int>(*value);
}

void check_heads(const std::string& path, const StatedFacts& facts, const char* tower, int width,
                 int heads) {
  if (heads > 0 && width % heads == 0) return;
  const std::string key = std::string(tower) + "_heads";
  const auto stated = facts.sources.find(key);
  const std::string why = stated != facts.sources.end()
                              ? "as " + stated->second + " says"
                              : "heads = width / " + std::to_string(kWidthPerHead) +
                                    " unless the checkpoint's configuration gives \"" + key + "\"";
  throw model_error(path + ": the " + tower + " width " + std::to_string(width) +
                    " cannot be split into " + std::to_string(heads) + " heads (" + why + ")");
}

// Where each fact of report.h's model_json came from, for `clipxai info`.
std::map<std::string, std::string> fact_sources(const StatedFacts& facts) {
  std::map<std::string, std::string> sources;
  for (const char* key :
       {"resolution", "patch_size", "grid", "vision_width", "vision_layers", "text_width",
        "text_layers", "embed_dim", "context_length", "vocab_size"}) {
    sources[key] = "shapes";
  }
  sources["name"] = "the file's name";
  sources["vision_heads"] = sources["text_heads"] = "default: width / 64, as OpenAI's build_model";
  sources["activation"] = "default: quick_gelu, as OpenAI's models";
  sources["image_mean"] = sources["image_std"] = "default: OpenAI's";
  sources["relevance_start_layer"] = sources["relevance_start_layer_text"] =
      "default: -1 (the last layer)";
  for (const auto& [key, source] : facts.sources) sources[key] = source;
  return sources;
}

}  // namespace

void apply_config_json(const std::string& path, const std::string& file, const std::string& text,
                       StatedFacts& facts) {
  const ConfigObject config = ConfigObject::parse(path, file, text);
  const auto stated = [&](const char* key) {
    if (!config.has(key)) return false;
    facts.sources[key] = config.field(key);
    return true;
  };
  if (stated("name")) facts.name = config.text("name", "");
  if (stated("vision_heads")) facts.vision_heads = config.positive("vision_heads", 0);
  if (stated("text_heads")) facts.text_heads = config.positive("text_heads", 0);
  if (stated("activation")) {
    const std::string activation = config.text("activation", "");
    if (activation == "quick_gelu") {
      facts.activation = Activation::QuickGelu;
    } else if (activation == "gelu") {
      facts.activation = Activation::Gelu;
    } else {
      config.fail("activation", "must be \"quick_gelu\" or \"gelu\", not \"" + activation + "\"");
    }
  }
  if (stated("image_mean")) facts.image_mean = config.colour("image_mean", false);
  if (stated("image_std")) facts.image_std = config.colour("image_std", true);
  const std::pair<const char*, std::optional<int64_t>*> start_layers[] = {
      {"relevance_start_layer", &facts.relevance_start_layer},
      {"relevance_start_layer_text", &facts.relevance_start_layer_text}};
  for (const auto& [key, value] : start_layers) {
    if (!stated(key)) continue;
    if (!config.json()[key].is_number_integer()) {
      config.fail(key, "must be an integer, not " + config.json()[key].dump());
    }
    *value = config.json()[key].get<int64_t>();
  }
}

void apply_model_config(const std::string& path, const LoadOptions& options, StatedFacts& facts) {
  if (options.model_config.empty()) return;
  const std::optional<std::string> text = read_optional_file(path, options.model_config);
  if (!text)
    throw model_error(path + ": --model-config " + options.model_config + ": no such file");
  apply_config_json(path, options.model_config, *text, facts);
}

void refuse_model_config(const std::string& path, const LoadOptions& options,
                         const std::string& own_config) {
  if (options.model_config.empty()) return;
  throw model_error(path + ": --model-config " + options.model_config +
                    " applies to checkpoints in OpenAI's layout; this one's facts come from " +
                    own_config);
}

Checkpoint checkpoint_from_openai_names(const std::string& path, const NamedTensors& tensors,
                                        const StatedFacts& facts) {
  check_supported(path, tensors);
  check_parameters_present(path, tensors);
  check_finite(path, tensors);
  Checkpoint checkpoint;
  read_weights(path, tensors, checkpoint);
  ModelConfig& config = checkpoint.config;
  if (facts.name) config.name = *facts.name;
  if (facts.vision_heads) config.vision_heads = *facts.vision_heads;
  if (facts.text_heads) config.text_heads = *facts.text_heads;
  if (facts.activation) config.activation = *facts.activation;
  if (facts.image_mean) config.image_mean = *facts.image_mean;
  if (facts.image_std) config.image_std = *facts.image_std;
  checkpoint.method_defaults.relevance_start_layer =
      checked_start_layer(path, facts, "relevance_start_layer", facts.relevance_start_layer,
                          "vision", config.vision_layers);
  checkpoint.method_defaults.relevance_start_layer_text =
      checked_start_layer(path, facts, "relevance_start_layer_text",
                          facts.relevance_start_layer_text, "text", config.text_layers);
  check_heads(path, facts, "vision", config.vision_width, config.vision_heads);
  check_heads(path, facts, "text", config.text_width, config.text_heads);
  for (TransformerWeights* transformer :
       {&checkpoint.weights.vision.transformer, &checkpoint.weights.text.transformer}) {
    transformer->activation = config.activation;
  }
  checkpoint.weights.vision.transformer.heads = config.vision_heads;
  checkpoint.weights.text.transformer.heads = config.text_heads;
  checkpoint.fact_sources = fact_sources(facts);
  return checkpoint;
}

}  // namespace clipxai
