// The open-clip checkpoint format: open_clip's weights (OpenAI's names; with custom_text models
// the text tower's under "text.") with the open_clip_config.json its hub exports hold, given as
// the folder (open_clip_model.safetensors, else open_clip_pytorch_model.bin) or as the weights
// file with the configuration beside it.
//
// open_clip_config.json, as open_clip's push_to_hf_hub writes it:
//   {"model_cfg": {"embed_dim", "quick_gelu" (default false: GELU — most open_clip ViTs),
//                  "vision_cfg": {"image_size" (224), "layers" (12), "width" (768),
//                                 "head_width" (64: heads = width / head_width),
//                                 "patch_size" (16)},
//                  "text_cfg": {"context_length" (77), "vocab_size" (49408), "width" (512),
//                               "heads" (8), "layers" (12)}},
//    "preprocess_cfg": {"mean", "std" (default OpenAI's)}}
// Defaults are open_clip's CLIPVisionCfg / CLIPTextCfg. Sizes are checked against the shapes.
// Towers clipxai does not run are refused naming the key: timm or Hugging Face towers, ResNets,
// CoCa's decoder, SigLIP's logit bias, attention pooling, layer scale, other pooling or
// normalisation options.
#include <filesystem>

#include "checkpoint_support.h"
#include "clipxai/checkpoint.h"
#include "clipxai/error.h"
#include "openai_layout.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigFile = "open_clip_config.json";
const char* const kWeightFiles[] = {"open_clip_model.safetensors", "open_clip_pytorch_model.bin"};
constexpr const char* kCustomTextPrefix = "text.";

// Where the configuration and the weights are.
struct Files {
  fs::path folder;
  fs::path weights;  // empty: the folder has none
};

Files files_of(const std::string& path) {
  if (!fs::is_directory(path)) return {fs::absolute(path).parent_path(), path};
  for (const char* file : kWeightFiles) {
    if (fs::exists(fs::path(path) / file)) return {path, fs::path(path) / file};
  }
  return {path, {}};
}

std::optional<std::string> rejects(const std::string& path) {
  const Files files = files_of(path);
  if (!fs::exists(files.folder / kConfigFile)) {
    return fs::is_directory(path) ? "a folder without open_clip_config.json"
                                  : "no open_clip_config.json beside it";
  }
  if (files.weights.empty()) {
    return "a folder with open_clip_config.json but neither open_clip_model.safetensors nor "
           "open_clip_pytorch_model.bin";
  }
  return std::nullopt;
}

// Options of open_clip towers that change what the weights compute, with the value clipxai runs.
struct RequiredSetting {
  const char* key;
  nlohmann::json value;  // null: the key must be absent or null
};

void check_settings(const ConfigObject& tower, const std::vector<RequiredSetting>& settings) {
  for (const RequiredSetting& setting : settings) {
    if (!tower.has(setting.key)) continue;
    const nlohmann::json& value = tower.json()[setting.key];
    if (value != setting.value) {
      tower.fail(setting.key, "is " + value.dump() + ": clipxai runs only " +
                                  (setting.value.is_null() ? std::string("towers without it")
                                                           : setting.value.dump()));
    }
  }
}

Checkpoint read(const std::string& path, const LoadOptions& options) {
  refuse_model_config(path, options, kConfigFile);
  const Files files = files_of(path);
  const std::optional<std::string> text = read_optional_file(path, files.folder / kConfigFile);
  const ConfigObject config = ConfigObject::parse(path, kConfigFile, text.value_or(""));
  const ConfigObject model = config.child("model_cfg");
  const ConfigObject vision = model.child("vision_cfg");
  const ConfigObject text_tower = model.child("text_cfg");
  const ConfigObject preprocess = config.child("preprocess_cfg");

  check_settings(model, {{"multimodal_cfg", nullptr}, {"init_logit_bias", nullptr}});
  if (vision.has("layers") && !vision.json()["layers"].is_number_integer()) {
    vision.fail("layers", "is a list: a ResNet CLIP, which clipxai does not run; use a ViT");
  }
  check_settings(vision, {{"timm_model_name", nullptr},
                          {"ls_init_value", nullptr},
                          {"attentional_pool", false},
                          {"no_ln_pre", false},
                          {"final_ln_after_pool", false},
                          {"pool_type", "tok"},
                          {"pos_embed_type", "learnable"},
                          {"act_kwargs", nullptr},
                          {"norm_kwargs", nullptr}});
  check_settings(text_tower, {{"hf_model_name", nullptr},
                              {"ls_init_value", nullptr},
                              {"embed_cls", false},
                              {"no_causal_mask", false},
                              {"final_ln_after_pool", false},
                              {"pool_type", "argmax"},
                              {"proj_bias", false},
                              {"proj_type", "linear"},
                              {"act_kwargs", nullptr},
                              {"norm_kwargs", nullptr}});

  NamedTensors tensors = read_tensor_file(files.weights.string());
  // custom_text models keep the text tower under "text."; the names below it are OpenAI's.
  NamedTensors renamed;
  for (auto& [name, tensor] : tensors) {
    const bool custom_text = name.compare(0, 5, kCustomTextPrefix) == 0;
    renamed[custom_text ? name.substr(5) : name] = std::move(tensor);
  }

  const int64_t width = vision.positive("width", 768);
  const int64_t head_width = vision.positive("head_width", 64);
  if (width % head_width != 0) {
    vision.fail("head_width", "(" + std::to_string(head_width) + ") does not divide width " +
                                  std::to_string(width));
  }
  StatedFacts facts;
  facts.name = checkpoint_name(path);
  facts.sources["name"] = "the folder's name";
  facts.vision_heads = static_cast<int>(width / head_width);
  facts.sources["vision_heads"] = vision.field("width") + " / " + vision.field("head_width");
  facts.text_heads = static_cast<int>(text_tower.positive("heads", 8));
  facts.sources["text_heads"] = text_tower.field("heads");
  facts.activation = model.boolean("quick_gelu", false) ? Activation::QuickGelu : Activation::Gelu;
  facts.sources["activation"] = model.field("quick_gelu");
  if ((facts.image_mean = preprocess.colour("mean", false))) {
    facts.sources["image_mean"] = preprocess.field("mean");
  }
  if ((facts.image_std = preprocess.colour("std", true))) {
    facts.sources["image_std"] = preprocess.field("std");
  }

  Checkpoint checkpoint = checkpoint_from_openai_names(path, renamed, facts);
  const ModelConfig& shapes = checkpoint.config;
  const auto image_size = vision.square_size("image_size");
  check_stated_sizes(
      path, {{vision.field("width"), width, shapes.vision_width},
             {vision.field("layers"), vision.positive("layers", 12), shapes.vision_layers},
             {vision.field("patch_size"), vision.positive("patch_size", 16), shapes.patch_size},
             {vision.field("image_size"), image_size.value_or(224), shapes.input_resolution},
             {text_tower.field("width"), text_tower.positive("width", 512), shapes.text_width},
             {text_tower.field("layers"), text_tower.positive("layers", 12), shapes.text_layers},
             {text_tower.field("context_length"), text_tower.positive("context_length", 77),
              shapes.context_length},
             {text_tower.field("vocab_size"), text_tower.positive("vocab_size", 49408),
              shapes.vocab_size},
             {model.field("embed_dim"), model.positive("embed_dim", shapes.embed_dim),
              shapes.embed_dim}});
  checkpoint.vocabulary = folder_vocabulary(path, files.folder);
  return checkpoint;
}

}  // namespace

CheckpointFormat open_clip_checkpoint_format() {
  return {"open-clip", "an open_clip checkpoint", rejects, read};
}

}  // namespace clipxai
