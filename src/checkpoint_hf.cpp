// The hf-transformers checkpoint format: a Hugging Face transformers CLIPModel folder, as
// CLIPModel.save_pretrained writes it and a hub snapshot holds it.
//
// Files:
//   config.json               model_type "clip"; text_config / vision_config with hidden_size,
//                             intermediate_size, num_attention_heads, num_hidden_layers,
//                             hidden_act ("quick_gelu" or "gelu"), layer_norm_eps (1e-5),
//                             max_position_embeddings, vocab_size (text), image_size,
//                             patch_size (vision); projection_dim. An absent key has
//                             transformers' default (configuration_clip.py), as save_pretrained
//                             leaves out keys at their defaults. Sizes the shapes show are
//                             checked against them; heads and activation come from here alone.
//   model.safetensors         the weights; or model.safetensors.index.json naming the shards
//                             ({"weight_map": {name: shard file}}); or pytorch_model.bin (and its
//                             .index.json), tried in that order.
//   preprocessor_config.json  optional: image_mean, image_std; crop_size and size (the short
//                             side's length) must be the model's input resolution, as clipxai
//                             resizes the short side to it and centre-crops, as CLIPImageProcessor.
//   vocab.json, merges.txt    optional: the tokenizer (tokenizer.h).
//
// Names, mapped onto OpenAI's (openai_layout.h) as transformers' own
// convert_clip_original_pytorch_to_hf.py maps OpenAI's onto them, checked against modeling_clip.py
// (CLIPModel, CLIPVisionEmbeddings, CLIPTextEmbeddings, CLIPEncoderLayer, CLIPAttention, CLIPMLP):
//   {text,vision}_model.encoder.layers.N.self_attn.{q,k,v}_proj.{weight,bias}
//                                        -> ...resblocks.N.attn.in_proj_{weight,bias} (q, k, v)
//   ....self_attn.out_proj.*            -> ....attn.out_proj.*
//   ....layer_norm1.*, layer_norm2.*     -> ....ln_1.*, ln_2.*
//   ....mlp.fc1.*, mlp.fc2.*             -> ....mlp.c_fc.*, mlp.c_proj.*
//   vision_model.embeddings.class_embedding, patch_embedding.weight, position_embedding.weight
//                                        -> visual.class_embedding, conv1.weight,
//                                           positional_embedding
//   vision_model.pre_layrnorm.* (transformers' spelling), post_layernorm.*
//                                        -> visual.ln_pre.*, visual.ln_post.*
//   visual_projection.weight [E, W], text_projection.weight [E, Wt] (nn.Linear, no bias)
//                                        -> visual.proj, text_projection, transposed
//   text_model.embeddings.token_embedding.weight, position_embedding.weight, final_layer_norm.*
//                                        -> token_embedding.weight, positional_embedding, ln_final.*
//   logit_scale                          -> logit_scale
// The position_ids buffers are ignored.
#include <filesystem>
#include <set>

#include "checkpoint_support.h"
#include "clipxai/checkpoint.h"
#include "clipxai/error.h"
#include "openai_layout.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigFile = "config.json";
constexpr const char* kPreprocessorFile = "preprocessor_config.json";
// CLIP's LayerNorms; clipxai's blocks use no other.
constexpr double kLayerNormEps = 1e-5;
const char* const kWeightFiles[] = {"model.safetensors", "model.safetensors.index.json",
                                    "pytorch_model.bin", "pytorch_model.bin.index.json"};

struct NamePair {
  const char* hf;
  const char* openai;
};

// Per block, after "{text,vision}_model.encoder.layers.N." and "...resblocks.N.".
const NamePair kBlockNames[] = {
    {"self_attn.out_proj.weight", "attn.out_proj.weight"},
    {"self_attn.out_proj.bias", "attn.out_proj.bias"},
    {"layer_norm1.weight", "ln_1.weight"},
    {"layer_norm1.bias", "ln_1.bias"},
    {"layer_norm2.weight", "ln_2.weight"},
    {"layer_norm2.bias", "ln_2.bias"},
    {"mlp.fc1.weight", "mlp.c_fc.weight"},
    {"mlp.fc1.bias", "mlp.c_fc.bias"},
    {"mlp.fc2.weight", "mlp.c_proj.weight"},
    {"mlp.fc2.bias", "mlp.c_proj.bias"},
};
const char* const kAttentionProjections[] = {"self_attn.q_proj.", "self_attn.k_proj.",
                                             "self_attn.v_proj."};

// Copied as they are.
const NamePair kTopLevelNames[] = {
    {"vision_model.embeddings.class_embedding", "visual.class_embedding"},
    {"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"},
    {"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"},
    {"vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"},
    {"vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"},
    {"vision_model.post_layernorm.weight", "visual.ln_post.weight"},
    {"vision_model.post_layernorm.bias", "visual.ln_post.bias"},
    {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
    {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
    {"text_model.final_layer_norm.weight", "ln_final.weight"},
    {"text_model.final_layer_norm.bias", "ln_final.bias"},
    {"logit_scale", "logit_scale"},
};
// nn.Linear weights [out, in], transposed into OpenAI's [in, out] parameters.
const NamePair kProjectionNames[] = {
    {"visual_projection.weight", "visual.proj"},
    {"text_projection.weight", "text_projection"},
};

struct Tower {
  const char* hf_prefix;      // "vision_model.encoder.layers."
  const char* openai_prefix;  // "visual.transformer.resblocks."
  const char* config_key;     // "vision_config"
  const char* name;           // "vision"
};
const Tower kTowers[] = {
    {"vision_model.encoder.layers.", "visual.transformer.resblocks.", "vision_config", "vision"},
    {"text_model.encoder.layers.", "transformer.resblocks.", "text_config", "text"},
};

// transformers' CLIPTextConfig and CLIPVisionConfig defaults, for keys save_pretrained left out.
struct TowerDefaults {
  int64_t hidden_size, intermediate_size, heads, layers;
};
constexpr TowerDefaults kVisionDefaults{768, 3072, 12, 12};
constexpr TowerDefaults kTextDefaults{512, 2048, 8, 12};
constexpr int64_t kDefaultImageSize = 224, kDefaultPatchSize = 32;
constexpr int64_t kDefaultContextLength = 77, kDefaultVocabSize = 49408;
constexpr int64_t kDefaultProjectionDim = 512;

std::optional<std::string> rejects(const std::string& path) {
  if (!fs::is_directory(path)) return "not a folder";
  if (!fs::exists(fs::path(path) / kConfigFile)) return "a folder without config.json";
  return std::nullopt;
}

// A shard named by an index file must be a plain file name in the folder: an index cannot make
// clipxai read files elsewhere.
NamedTensors read_sharded(const std::string& path, const fs::path& index_file) {
  const std::optional<std::string> text = read_optional_file(path, index_file);
  const std::string index_name = index_file.filename().string();
  const ConfigObject index = ConfigObject::parse(path, index_name, text.value_or(""));
  const ConfigObject weight_map = index.child("weight_map");
  if (weight_map.json().empty()) index.fail("weight_map", "is missing or empty");
  std::set<std::string> shards;
  for (const auto& [name, shard] : weight_map.json().items()) {
    const std::string file = weight_map.text(name, "");
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
      weight_map.fail(name, "must name a shard file in the folder, not \"" + file + "\"");
    }
    shards.insert(file);
  }
  NamedTensors tensors;
  std::map<std::string, std::string> found_in;
  for (const std::string& shard : shards) {
    const fs::path shard_path = index_file.parent_path() / shard;
    if (!fs::is_regular_file(shard_path)) {
      throw model_error(path + ": " + index_name + " names the shard " + shard +
                        ", which is not in the folder");
    }
    for (auto& [name, tensor] : read_tensor_file(shard_path.string())) {
      found_in[name] = shard;
      tensors[name] = std::move(tensor);
    }
  }
  for (const auto& [name, shard] : weight_map.json().items()) {
    const auto found = found_in.find(name);
    if (found == found_in.end() || found->second != shard.get<std::string>()) {
      throw model_error(path + ": " + index_name + " puts " + name + " in " +
                        shard.get<std::string>() + ", which does not hold it");
    }
  }
  return tensors;
}

NamedTensors read_weights(const std::string& path, std::string* weights_file) {
  for (const char* file : kWeightFiles) {
    const fs::path candidate = fs::path(path) / file;
    if (!fs::exists(candidate)) continue;
    *weights_file = file;
    const bool index = candidate.extension() == ".json";
    return index ? read_sharded(path, candidate) : read_tensor_file(candidate.string());
  }
  throw model_error(path +
                    ": the folder has no weights (model.safetensors, "
                    "model.safetensors.index.json, pytorch_model.bin or its .index.json)");
}

void require(const std::string& path, const std::string& weights_file, const NamedTensors& tensors,
             const std::string& name) {
  if (tensors.count(name) == 0) {
    throw model_error(path + ": " + weights_file + " has no " + name +
                      " (not a transformers CLIPModel, or damaged)");
  }
}

// The tensors under OpenAI's names.
NamedTensors openai_names(const std::string& path, const std::string& weights_file,
                          const NamedTensors& tensors, const int layers[2]) {
  NamedTensors renamed;
  const auto copy = [&](const std::string& from, const std::string& to) {
    require(path, weights_file, tensors, from);
    renamed[to] = tensors.at(from);
  };
  for (const NamePair& pair : kTopLevelNames) copy(pair.hf, pair.openai);
  for (const NamePair& pair : kProjectionNames) {
    require(path, weights_file, tensors, pair.hf);
    renamed[pair.openai] = tensors.at(pair.hf).t().contiguous();
  }
  for (int t = 0; t < 2; ++t) {
    const Tower& tower = kTowers[t];
    for (int layer = 0; layer < layers[t]; ++layer) {
      const std::string hf = tower.hf_prefix + std::to_string(layer) + ".";
      const std::string openai = tower.openai_prefix + std::to_string(layer) + ".";
      for (const NamePair& pair : kBlockNames) copy(hf + pair.hf, openai + pair.openai);
      for (const char* part : {"weight", "bias"}) {
        std::vector<torch::Tensor> qkv;
        for (const char* projection : kAttentionProjections) {
          const std::string name = hf + projection + part;
          require(path, weights_file, tensors, name);
          qkv.push_back(tensors.at(name));
        }
        renamed[openai + "attn.in_proj_" + part] = torch::cat(qkv, 0);
      }
    }
  }
  return renamed;
}

Activation activation_of(const ConfigObject& tower) {
  const std::string act = tower.text("hidden_act", "quick_gelu");
  if (act == "quick_gelu") return Activation::QuickGelu;
  if (act == "gelu") return Activation::Gelu;
  tower.fail("hidden_act", "is \"" + act + "\"; clipxai runs \"quick_gelu\" and \"gelu\"");
}

std::optional<ConfigObject> read_preprocessor(const std::string& path, StatedFacts& facts) {
  const std::optional<std::string> text =
      read_optional_file(path, fs::path(path) / kPreprocessorFile);
  if (!text) return std::nullopt;
  ConfigObject preprocessor = ConfigObject::parse(path, kPreprocessorFile, *text);
  if ((facts.image_mean = preprocessor.colour("image_mean", false))) {
    facts.sources["image_mean"] = preprocessor.field("image_mean");
  }
  if ((facts.image_std = preprocessor.colour("image_std", true))) {
    facts.sources["image_std"] = preprocessor.field("image_std");
  }
  return preprocessor;
}

void check_preprocessor_sizes(const ConfigObject& preprocessor, const ModelConfig& config) {
  for (const char* key : {"crop_size", "size"}) {
    const std::optional<int64_t> size = preprocessor.square_size(key);
    if (size && *size != config.input_resolution) {
      preprocessor.fail(key, "is " + std::to_string(*size) + ", but the model's input is " +
                                 std::to_string(config.input_resolution) +
                                 " px: clipxai resizes the short side to the input size and "
                                 "centre-crops it, as CLIP");
    }
  }
}

Checkpoint read(const std::string& path, const LoadOptions& options) {
  refuse_model_config(path, options, kConfigFile);
  const std::optional<std::string> text = read_optional_file(path, fs::path(path) / kConfigFile);
  const ConfigObject config = ConfigObject::parse(path, kConfigFile, text.value_or(""));
  const std::string model_type = config.text("model_type", "clip");
  if (model_type != "clip") {
    config.fail("model_type",
                "is \"" + model_type + "\": clipxai reads CLIP ViT models (model_type \"clip\")");
  }
  // Configurations written by transformers before 4.x name the towers *_config_dict.
  const auto tower_config = [&](const std::string& key) {
    return config.has(key) || !config.has(key + "_dict") ? config.child(key)
                                                         : config.child(key + "_dict");
  };
  const ConfigObject vision = tower_config("vision_config");
  const ConfigObject text_tower = tower_config("text_config");

  std::string weights_file;
  const NamedTensors tensors = read_weights(path, &weights_file);
  const ConfigObject* tower_configs[2] = {&vision, &text_tower};
  const TowerDefaults* defaults[2] = {&kVisionDefaults, &kTextDefaults};
  int layers[2];
  for (int t = 0; t < 2; ++t) {
    layers[t] = count_blocks(tensors, kTowers[t].hf_prefix);
    const int64_t stated = tower_configs[t]->positive("num_hidden_layers", defaults[t]->layers);
    if (stated != layers[t]) {
      tower_configs[t]->fail("num_hidden_layers",
                             "is " + std::to_string(stated) + ", but " + weights_file + " has " +
                                 std::to_string(layers[t]) + " " + kTowers[t].name + " layers");
    }
    const double eps = tower_configs[t]->number("layer_norm_eps", kLayerNormEps);
    if (std::abs(eps - kLayerNormEps) > 1e-9) {
      tower_configs[t]->fail("layer_norm_eps", "is " + std::to_string(eps) +
                                                   "; clipxai's LayerNorms use 1e-05, as CLIP");
    }
  }

  StatedFacts facts;
  facts.name = config.text("_name_or_path", "");
  facts.sources["name"] = config.field("_name_or_path");
  if (facts.name->empty()) {
    facts.name = checkpoint_name(path);
    facts.sources["name"] = "the folder's name";
  }
  const auto source = [](const ConfigObject& tower, const char* key, const char* defaults) {
    return tower.has(key) ? tower.field(key) : std::string("default: transformers' ") + defaults;
  };
  facts.vision_heads =
      static_cast<int>(vision.positive("num_attention_heads", kVisionDefaults.heads));
  facts.sources["vision_heads"] = source(vision, "num_attention_heads", "CLIPVisionConfig");
  facts.text_heads =
      static_cast<int>(text_tower.positive("num_attention_heads", kTextDefaults.heads));
  facts.sources["text_heads"] = source(text_tower, "num_attention_heads", "CLIPTextConfig");
  facts.activation = activation_of(vision);
  facts.sources["activation"] = source(vision, "hidden_act", "CLIPVisionConfig");
  if (activation_of(text_tower) != *facts.activation) {
    text_tower.fail("hidden_act", "differs from " + vision.field("hidden_act") +
                                      "; clipxai runs one activation in both towers");
  }

  const std::optional<ConfigObject> preprocessor = read_preprocessor(path, facts);

  Checkpoint checkpoint =
      checkpoint_from_openai_names(path, openai_names(path, weights_file, tensors, layers), facts);
  const ModelConfig& shapes = checkpoint.config;
  const TransformerWeights* blocks[2] = {&checkpoint.weights.vision.transformer,
                                         &checkpoint.weights.text.transformer};
  std::vector<StatedSize> sizes = {
      {vision.field("hidden_size"), vision.positive("hidden_size", kVisionDefaults.hidden_size),
       shapes.vision_width},
      {vision.field("image_size"), vision.positive("image_size", kDefaultImageSize),
       shapes.input_resolution},
      {vision.field("patch_size"), vision.positive("patch_size", kDefaultPatchSize),
       shapes.patch_size},
      {text_tower.field("hidden_size"),
       text_tower.positive("hidden_size", kTextDefaults.hidden_size), shapes.text_width},
      {text_tower.field("max_position_embeddings"),
       text_tower.positive("max_position_embeddings", kDefaultContextLength),
       shapes.context_length},
      {text_tower.field("vocab_size"), text_tower.positive("vocab_size", kDefaultVocabSize),
       shapes.vocab_size},
      {config.field("projection_dim"), config.positive("projection_dim", kDefaultProjectionDim),
       shapes.embed_dim},
  };
  for (int t = 0; t < 2; ++t) {
    if (blocks[t]->blocks.empty()) continue;
    sizes.push_back(
        {tower_configs[t]->field("intermediate_size"),
         tower_configs[t]->positive("intermediate_size", defaults[t]->intermediate_size),
         blocks[t]->blocks[0].fc_weight.size(0)});
  }
  check_stated_sizes(path, sizes);
  if (preprocessor) check_preprocessor_sizes(*preprocessor, shapes);
  checkpoint.vocabulary = folder_vocabulary(path, path);
  return checkpoint;
}

}  // namespace

CheckpointFormat hf_checkpoint_format() {
  return {"hf-transformers", "a Hugging Face transformers folder", rejects, read};
}

}  // namespace clipxai
