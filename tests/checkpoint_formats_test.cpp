// The checkpoint readers of checkpoint.h on broken copies of scripts/write_checkpoint_layouts.py's
// layouts (tests/data/layouts/): every damaged safetensors or torch.save file, every bad or
// disagreeing configuration and every unsupported architecture is a one-line Error(Model) that
// names the checkpoint and what is wrong, never a crash or a giant allocation. (That the good
// layouts all give the same model is tests/cli/checkpoint_layouts.sh.)
#include <caffe2/serialize/inline_container.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "clipxai/error.h"
#include "clipxai/model.h"
#include "test_files.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

const fs::path kLayouts = fs::path(CLIPXAI_TEST_DATA) / "layouts";

using testing::read_bytes;
using testing::write_bytes;

// A safetensors file split into its header (as JSON) and its data, to be put back together
// changed.
struct Safetensors {
  nlohmann::json header;
  std::string data;

  static Safetensors read(const fs::path& path) {
    const std::string bytes = read_bytes(path);
    uint64_t size = 0;
    std::memcpy(&size, bytes.data(), 8);  // little-endian, as this machine
    return {nlohmann::json::parse(bytes.substr(8, size)), bytes.substr(8 + size)};
  }
  std::string bytes() const {
    const std::string text = header.dump();
    const uint64_t size = text.size();
    return std::string(reinterpret_cast<const char*>(&size), 8) + text + data;
  }
};

std::string with_length_field(std::string bytes, uint64_t length) {
  std::memcpy(bytes.data(), &length, 8);
  return bytes;
}

// A zip as torch.save writes one (with `torchscript`, as torch.jit.save does: its constants.pkl
// marks TorchScript), holding `pickle` as data.pkl.
void pytorch_zip(const fs::path& path, const std::string& pickle, bool torchscript) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  if (torchscript) {
    const std::string constants("\x80\x02).", 4);  // an empty tuple
    writer.writeRecord("constants.pkl", constants.data(), constants.size());
  }
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
}

// A scratch copy of a layout folder (or an empty folder), removed with the test.
class Scratch {
 public:
  explicit Scratch(const std::string& name)
      : root_(fs::temp_directory_path() /
              ("clipxai_formats_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~Scratch() { fs::remove_all(root_); }
  fs::path copy(const std::string& layout) const {
    fs::copy(kLayouts / layout, root_ / layout, fs::copy_options::recursive);
    return root_ / layout;
  }
  fs::path path(const std::string& name) const { return root_ / name; }

 private:
  fs::path root_;
};

void edit_json(const fs::path& path, const std::function<void(nlohmann::json&)>& change) {
  nlohmann::json json = nlohmann::json::parse(read_bytes(path));
  change(json);
  write_bytes(path, json.dump());
}

struct BadCheckpoint {
  std::string name;
  // Makes the broken checkpoint in the scratch folder and returns the path to load.
  std::function<fs::path(const Scratch&)> make;
  std::string message;  // expected part of the error message
  LoadOptions options = {};
};

// The hf layout with its model.safetensors replaced by `change`'s result.
std::function<fs::path(const Scratch&)> hf_weights(std::function<std::string(Safetensors)> change) {
  return [change](const Scratch& scratch) {
    const fs::path folder = scratch.copy("hf");
    write_bytes(folder / "model.safetensors",
                change(Safetensors::read(folder / "model.safetensors")));
    return folder;
  };
}

std::function<fs::path(const Scratch&)> edited(const std::string& layout, const std::string& file,
                                               std::function<void(nlohmann::json&)> change) {
  return [=](const Scratch& scratch) {
    const fs::path folder = scratch.copy(layout);
    edit_json(folder / file, change);
    return folder;
  };
}

std::function<fs::path(const Scratch&)> file_named(const std::string& name,
                                                   const std::string& bytes) {
  return [=](const Scratch& scratch) {
    write_bytes(scratch.path(name), bytes);
    return scratch.path(name);
  };
}

std::function<fs::path(const Scratch&)> state_dict_file(const std::string& bytes) {
  return file_named("model.safetensors", bytes);
}

// `bytes`: a string literal, NULs included, as the data.pkl of a torch.save file or, with
// `torchscript`, of a TorchScript archive.
template <size_t N>
std::function<fs::path(const Scratch&)> pickled(const char (&bytes)[N], bool torchscript = false) {
  const std::string pickle(bytes, N - 1);
  const std::string name = torchscript ? "model.pt" : "weights.bin";
  return [=](const Scratch& scratch) {
    pytorch_zip(scratch.path(name), pickle, torchscript);
    return scratch.path(name);
  };
}

TEST(CheckpointFormats, BrokenCheckpointsAreOneLineModelErrorsNamingThem) {
  const std::string state_dict = read_bytes(kLayouts / "state_dict.safetensors");
  const std::vector<BadCheckpoint> cases = {
      // safetensors
      {"shorter than the header length", state_dict_file(state_dict.substr(0, 5)),
       "truncated safetensors file (5 bytes"},
      {"truncated", state_dict_file(state_dict.substr(0, state_dict.size() / 2)), "outside the"},
      {"header length past the end", state_dict_file(with_length_field(state_dict, 1u << 30)),
       "safetensors header length 1073741824 runs past the end of the file"},
      {"header length of 2^64 - 1", state_dict_file(with_length_field(state_dict, ~uint64_t{0})),
       "runs past the end of the file"},
      {"header not JSON", state_dict_file(with_length_field(state_dict, 3)),
       "safetensors header is not valid JSON"},
      {"offsets past the end", hf_weights([](Safetensors file) {
         file.header["logit_scale"]["data_offsets"][1] = file.data.size() + 4;
         file.header["logit_scale"]["data_offsets"][0] = file.data.size();
         return file.bytes();
       }),
       "entry \"logit_scale\" has data_offsets"},
      {"offsets overlapping", hf_weights([](Safetensors file) {
         file.header["text_model.final_layer_norm.bias"]["data_offsets"] =
             file.header["text_model.final_layer_norm.weight"]["data_offsets"];
         return file.bytes();
       }),
       "overlap in the data"},
      {"offsets disagreeing with the shape", hf_weights([](Safetensors file) {
         file.header["logit_scale"]["shape"] = {2};
         return file.bytes();
       }),
       "entry \"logit_scale\" has data_offsets"},
      {"unknown dtype", hf_weights([](Safetensors file) {
         file.header["logit_scale"]["dtype"] = "Q4";
         return file.bytes();
       }),
       "entry \"logit_scale\" has the unknown dtype \"Q4\""},
      {"dtype LibTorch cannot hold", hf_weights([](Safetensors file) {
         file.header["logit_scale"]["dtype"] = "U32";
         return file.bytes();
       }),
       "has dtype U32, which clipxai cannot read"},
      {"negative dimension", hf_weights([](Safetensors file) {
         file.header["logit_scale"]["shape"] = {-1};
         return file.bytes();
       }),
       "(expected non-negative sizes)"},
      {"giant shape", hf_weights([](Safetensors file) {
         file.header["logit_scale"]["shape"] = {1u << 30, 1u << 30, 1u << 30};
         return file.bytes();
       }),
       "too many elements"},
      {"NaN weight", hf_weights([](Safetensors file) {
         const size_t at = file.header["logit_scale"]["data_offsets"][0].get<size_t>();
         file.data.replace(at, 4, std::string("\x00\x00\xC0\x7F", 4));  // F32 NaN
         return file.bytes();
       }),
       "logit_scale holds NaN or infinite values"},
      {"infinite weight inside a matrix", hf_weights([](Safetensors file) {
         const auto& entry = file.header["text_projection.weight"];
         const size_t at = entry["data_offsets"][0].get<size_t>() + 4 * 7;
         file.data.replace(at, 4, std::string("\x00\x00\x80\x7F", 4));  // F32 +inf
         return file.bytes();
       }),
       "text_projection holds NaN or infinite values"},
      {"negative infinity", hf_weights([](Safetensors file) {
         const size_t at = file.header["logit_scale"]["data_offsets"][0].get<size_t>();
         file.data.replace(at, 4, std::string("\x00\x00\x80\xFF", 4));  // F32 -inf
         return file.bytes();
       }),
       "logit_scale holds NaN or infinite values"},
      {"missing tensor", hf_weights([](Safetensors file) {
         file.header.erase("text_projection.weight");
         return file.bytes();
       }),
       "model.safetensors has no text_projection.weight"},
      // transformers folders
      {"folder without config.json",
       [](const Scratch& scratch) {
         const fs::path folder = scratch.copy("hf");
         fs::remove(folder / "config.json");
         return folder;
       },
       "not a Hugging Face transformers folder (a folder without config.json)"},
      {"folder without weights",
       [](const Scratch& scratch) {
         const fs::path folder = scratch.copy("hf");
         fs::remove(folder / "model.safetensors");
         return folder;
       },
       "the folder has no weights (model.safetensors"},
      {"config.json not JSON",
       [](const Scratch& scratch) {
         const fs::path folder = scratch.copy("hf");
         write_bytes(folder / "config.json", "{\"model_type\": ");
         return folder;
       },
       "config.json: not valid JSON"},
      {"config disagreeing with the shapes",
       edited("hf", "config.json", [](auto& json) { json["vision_config"]["hidden_size"] = 32; }),
       "config.json: vision_config.hidden_size is 32, but the weights' shapes give 16"},
      {"config with other layer counts",
       edited("hf", "config.json",
              [](auto& json) { json["text_config"]["num_hidden_layers"] = 12; }),
       "config.json: text_config.num_hidden_layers is 12, but model.safetensors has 2 text layers"},
      {"config with the wrong type",
       edited("hf", "config.json",
              [](auto& json) { json["vision_config"]["num_attention_heads"] = "two"; }),
       "config.json: vision_config.num_attention_heads must be a positive integer"},
      {"heads not dividing the width",
       edited("hf", "config.json",
              [](auto& json) { json["vision_config"]["num_attention_heads"] = 3; }),
       "vision width 16 cannot be split into 3 heads (as config.json: "
       "vision_config.num_attention_heads says)"},
      {"another model type",
       edited("hf", "config.json", [](auto& json) { json["model_type"] = "siglip"; }),
       "config.json: model_type is \"siglip\": clipxai reads CLIP ViT models"},
      {"another activation",
       edited("hf", "config.json",
              [](auto& json) { json["vision_config"]["hidden_act"] = "gelu_new"; }),
       "config.json: vision_config.hidden_act is \"gelu_new\""},
      {"towers with different activations",
       edited("hf", "config.json",
              [](auto& json) { json["text_config"]["hidden_act"] = "quick_gelu"; }),
       "text_config.hidden_act differs from config.json: vision_config.hidden_act"},
      {"another LayerNorm epsilon",
       edited("hf", "config.json",
              [](auto& json) { json["text_config"]["layer_norm_eps"] = 1e-6; }),
       "config.json: text_config.layer_norm_eps is 0.000001"},
      {"another crop size",
       edited("hf", "preprocessor_config.json",
              [](auto& json) {
                json["crop_size"] = {{"height", 64}, {"width", 64}};
              }),
       "preprocessor_config.json: crop_size is 64, but the model's input is 32 px"},
      {"shard outside the folder",
       edited("hf_sharded", "model.safetensors.index.json",
              [](auto& json) { json["weight_map"]["logit_scale"] = "../elsewhere.safetensors"; }),
       "must name a shard file in the folder, not \"../elsewhere.safetensors\""},
      {"shard missing",
       edited("hf_sharded", "model.safetensors.index.json",
              [](auto& json) { json["weight_map"]["logit_scale"] = "model-00009.safetensors"; }),
       "names the shard model-00009.safetensors, which is not in the folder"},
      {"index naming the wrong shard",
       edited("hf_sharded", "model.safetensors.index.json",
              [](auto& json) {
                auto& map = json["weight_map"];
                map["logit_scale"] = map["logit_scale"] == "model-00001-of-00002.safetensors"
                                         ? "model-00002-of-00002.safetensors"
                                         : "model-00001-of-00002.safetensors";
              }),
       "puts logit_scale in"},
      {"--model-config with a folder of its own", [](const Scratch& s) { return s.copy("hf"); },
       "--model-config", LoadOptions{(kLayouts / "state_dict.config.json").string()}},
      // open_clip
      {"open_clip tower of timm",
       edited("open_clip", "open_clip_config.json",
              [](auto& json) {
                json["model_cfg"]["vision_cfg"]["timm_model_name"] = "eva02_base_patch14_224";
              }),
       "open_clip_config.json: model_cfg.vision_cfg.timm_model_name is \"eva02_base_patch14_224\""},
      {"open_clip SigLIP",
       edited("open_clip", "open_clip_config.json",
              [](auto& json) { json["model_cfg"]["init_logit_bias"] = -10; }),
       "model_cfg.init_logit_bias is -10"},
      {"open_clip ResNet",
       edited("open_clip", "open_clip_config.json",
              [](auto& json) {
                json["model_cfg"]["vision_cfg"]["layers"] = {3, 4, 6, 3};
              }),
       "model_cfg.vision_cfg.layers is a list: a ResNet CLIP"},
      {"open_clip config disagreeing with the shapes",
       edited("open_clip", "open_clip_config.json",
              [](auto& json) { json["model_cfg"]["text_cfg"]["context_length"] = 77; }),
       "model_cfg.text_cfg.context_length is 77, but the weights' shapes give 16"},
      {"open_clip head width not dividing the width",
       edited("open_clip", "open_clip_config.json",
              [](auto& json) { json["model_cfg"]["vision_cfg"]["head_width"] = 5; }),
       "model_cfg.vision_cfg.head_width (5) does not divide width 16"},
      // bare state dicts
      {"state dict without heads", state_dict_file(state_dict),
       "the vision width 16 cannot be split into 0 heads"},
      {"state dict of transformers names",
       [](const Scratch& scratch) { return scratch.copy("hf") / "model.safetensors"; },
       "holds Hugging Face transformers names"},
      {"missing path", [](const Scratch& scratch) { return scratch.path("nothing.safetensors"); },
       "no such file or folder"},
      {"--model-config file missing", state_dict_file(state_dict), "no-such.json: no such file",
       LoadOptions{"no-such.json"}},
      // torch.save files: only the pickle operations of a state dict are run
      {"pickle calling os.system",
       pickled("\x80\x02"
               "cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."),
       "data.pkl names posix.system, which a state dict of tensors does not hold"},
      {"legacy torch.save file", file_named("old.bin", std::string("\x80\x02\x8a\x0a", 4)),
       "a legacy torch.save file (PyTorch before 1.6)"},
      {"pickle cut short", pickled("\x80\x02}q\x00(X\x05\x00\x00"), "data.pkl is cut short"},
      {"pickle of no dict", pickled("\x80\x02K\x05."), "holds no dict of tensors"},
      {"pickle with a storage it lacks",
       pickled("\x80\x02}q\x00X\x01\x00\x00\x00"
               "aq\x01"
               "ctorch._utils\n_rebuild_tensor_v2\n"
               "q\x02((X\x07\x00\x00\x00storageq\x03"
               "ctorch\nFloatStorage\nq\x04"
               "X\x01\x00\x00\x00"
               "0q\x05X\x03\x00\x00\x00"
               "cpuq\x06K\x04tq\x07QK\x00K\x04\x85K\x01"
               "\x85\x89)tRs."),
       "refers to the missing record data/0"},
      {"pickle operation outside a state dict",
       pickled("\x80\x02"
               "c__builtin__\neval\n."),
       "names __builtin__.eval"},
      // The storage reference and the call held by the stack alone (nothing memoised), as
      // TorchScript's pickler writes them: read after being popped, not after being freed.
      {"pickle with an unmemoised storage reference it lacks",
       pickled("\x80\x02}X\x01\x00\x00\x00"
               "a"
               "ctorch._utils\n_rebuild_tensor_v2\n"
               "((X\x07\x00\x00\x00storage"
               "ctorch\nFloatStorage\n"
               "X\x01\x00\x00\x00"
               "0X\x03\x00\x00\x00"
               "cpuK\x04tQK\x00K\x04\x85K\x01"
               "\x85\x89)tRs."),
       "refers to the missing record data/0"},
      // TorchScript archives: module objects only of scripted classes, whose code never runs
      {"TorchScript object of a Python class",
       pickled("\x80\x02"
               "cposix\nsystem\n)\x81}b.",
               true),
       "data.pkl names posix.system, which a TorchScript module's tensors do not need"},
      {"TorchScript object of a plain callable",
       pickled("\x80\x02"
               "ccollections\nOrderedDict\n)\x81}b.",
               true),
       "data.pkl makes an object of collections.OrderedDict"},
      {"TorchScript data.pkl without a module", pickled("\x80\x02}.", true),
       "holds no module (not a TorchScript archive)"},
      {"TorchScript module with a storage it lacks",
       pickled("\x80\x02"
               "c__torch__.model\nCLIP\n)\x81}(X\x0b\x00\x00\x00logit_scale"
               "ctorch._utils\n_rebuild_tensor_v2\n"
               "((X\x07\x00\x00\x00storage"
               "ctorch\nFloatStorage\n"
               "X\x01\x00\x00\x00"
               "0X\x03\x00\x00\x00"
               "cpuK\x01tQK\x00)))tRub.",
               true),
       "refers to the missing record data/0"},
  };
  for (const BadCheckpoint& bad : cases) {
    SCOPED_TRACE(bad.name);
    const Scratch scratch(std::to_string(&bad - cases.data()));
    const std::string path = bad.make(scratch).string();
    try {
      ClipModel::load(path, bad.options);
      ADD_FAILURE() << "loaded without error";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(e.category(), ErrorCategory::Model) << message;
      EXPECT_EQ(message.rfind(path, 0), 0u) << message;
      EXPECT_NE(message.find(bad.message), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace clipxai
