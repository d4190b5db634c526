// ClipModel: loading OpenAI-layout archives (fp32 and OpenAI's fp16 layout, with and without
// config.json), the inferred architecture, the plain encoders against the Python reference, and
// the loader's one-line errors for every kind of bad file.
#include "clipxai/model.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "clipxai/error.h"
#include "model_reference.h"
#include "test_files.h"

namespace clipxai {
namespace {

using testing::model_data;
using testing::read_bytes;
using testing::Reference;
using testing::relative_error;
using testing::to_tensor;

class ReferenceModel : public ::testing::TestWithParam<std::string> {
 protected:
  Reference reference{GetParam()};
  ClipModel model = ClipModel::load(reference.archive());
};

TEST_P(ReferenceModel, InfersTheArchitecture) {
  const auto& expected = reference.json["config"];
  const auto& config = model.config();
  EXPECT_EQ(config.name, expected["name"]);
  EXPECT_EQ(config.input_resolution, expected["input_resolution"]);
  EXPECT_EQ(config.patch_size, expected["patch_size"]);
  EXPECT_EQ(config.grid, expected["grid"]);
  EXPECT_EQ(config.vision_width, expected["vision_width"]);
  EXPECT_EQ(config.vision_layers, expected["vision_layers"]);
  EXPECT_EQ(config.vision_heads, expected["vision_heads"]);
  EXPECT_EQ(config.embed_dim, expected["embed_dim"]);
  EXPECT_EQ(config.context_length, expected["context_length"]);
  EXPECT_EQ(config.vocab_size, expected["vocab_size"]);
  EXPECT_EQ(config.text_width, expected["text_width"]);
  EXPECT_EQ(config.text_layers, expected["text_layers"]);
  EXPECT_EQ(config.text_heads, expected["text_heads"]);
  EXPECT_EQ(to_string(config.activation), expected["activation"]);
  EXPECT_EQ(model.method_defaults().relevance_start_layer, expected["relevance_start_layer"]);
  EXPECT_EQ(model.method_defaults().relevance_start_layer_text,
            expected["relevance_start_layer_text"]);
  for (size_t c = 0; c < 3; ++c) {
    EXPECT_FLOAT_EQ(config.image_mean[c], expected["image_mean"][c].get<float>());
    EXPECT_FLOAT_EQ(config.image_std[c], expected["image_std"][c].get<float>());
  }
  EXPECT_EQ(model.vision_transformer().blocks.size(), static_cast<size_t>(config.vision_layers));
  EXPECT_EQ(model.text_transformer().blocks.size(), static_cast<size_t>(config.text_layers));
}

TEST_P(ReferenceModel, CarriesItsEmbeddedVocabulary) {
  const auto& vocabulary = model.embedded_vocabulary();
  ASSERT_EQ(vocabulary.has_value(), reference.json["config"]["embedded_vocabulary"].get<bool>());
  if (vocabulary) EXPECT_EQ(vocabulary->gzip_merges.substr(0, 2), "\x1f\x8b");
}

TEST_P(ReferenceModel, HoldsEveryWeightInFp32) {
  const ClipWeights& w = model.weights();
  const std::vector<std::pair<const char*, torch::Tensor>> tensors = {
      {"visual.proj", w.vision.proj},
      {"visual.conv1.weight", w.vision.conv1},
      {"text_projection", w.text.projection},
      {"visual.transformer.resblocks.0.attn.in_proj_weight (query rows)",
       w.vision.transformer.blocks[0].q_weight},
      {"visual.transformer.resblocks.0.attn.in_proj_weight (key and value rows)",
       w.vision.transformer.blocks[0].kv_weight},
      {"transformer.resblocks.0.mlp.c_fc.weight", w.text.transformer.blocks[0].fc_weight},
      {"ln_final.weight", w.text.ln_final_weight}};
  for (const auto& [name, tensor] : tensors) {
    EXPECT_EQ(tensor.scalar_type(), torch::kFloat) << name;
    EXPECT_TRUE(tensor.is_contiguous()) << name;
    EXPECT_FALSE(tensor.requires_grad()) << name;
  }
}

TEST_P(ReferenceModel, ImageEncoderMatchesReference) {
  const auto features = model.encode_image(reference.images());
  const auto expected = to_tensor(reference.json["image_features"]);
  ASSERT_EQ(features.sizes(), expected.sizes());
  EXPECT_LT(relative_error(features, expected), 1e-4);
}

TEST_P(ReferenceModel, TextEncoderMatchesReference) {
  const auto features = model.encode_text(reference.prompts());
  const auto expected = to_tensor(reference.json["text_features"]);
  ASSERT_EQ(features.sizes(), expected.sizes());
  EXPECT_LT(relative_error(features, expected), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Archives, ReferenceModel, ::testing::ValuesIn(testing::reference_files()),
                         [](const auto& info) { return testing::reference_name(info.param); });

TEST(ClipModel, RejectsTokenIdsOutsideTheVocabulary) {
  const auto model = ClipModel::load(model_data("tiny_vit.pt"));
  const auto ids = torch::tensor({{model.config().vocab_size - 2, model.config().vocab_size}});
  try {
    model.encode_text(ids, torch::tensor({1}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::Input);
    EXPECT_NE(std::string(e.what()).find("token ids must lie in"), std::string::npos) << e.what();
  }
}

// A scratch file with the given bytes, removed at the end of the test.
class ScratchFile {
 public:
  ScratchFile(const std::string& name, const std::string& bytes)
      : path_(std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "_" + name)) {
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~ScratchFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

struct BadModelCase {
  std::string name;
  std::string path;
  std::string message;  // expected part of the error message
};

void expect_model_error(const BadModelCase& bad) {
  try {
    ClipModel::load(bad.path);
    ADD_FAILURE() << bad.name << ": loaded without error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.category(), ErrorCategory::Model) << bad.name;
    EXPECT_EQ(message.rfind(bad.path + ": ", 0), 0u) << bad.name << ": " << message;
    EXPECT_NE(message.find(bad.message), std::string::npos) << bad.name << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << bad.name << ": " << message;
  }
}

TEST(ClipModel, RejectsBadArchivesWithOneLineErrorsNamingTheFile) {
  const auto archive = read_bytes(model_data("tiny_vit.pt"));
  const ScratchFile garbage("garbage.pt", "this is not a model\n");
  const ScratchFile empty("empty.pt", "");
  const ScratchFile truncated("truncated.pt", archive.substr(0, archive.size() / 2));
  const ScratchFile cut_at_end("cut_at_end.pt", archive.substr(0, archive.size() - 10));
  const std::vector<BadModelCase> cases = {
      {"missing file", model_data("no_such_model.pt"), "no such file"},
      {"folder of no format", model_data(""),
       "not a Hugging Face transformers folder (a folder without config.json); not an open_clip "
       "checkpoint (a folder without open_clip_config.json)"},
      {"garbage", garbage.path(), "not a TorchScript archive (not a zip file)"},
      {"empty file", empty.path(), "not a TorchScript archive (not a zip file)"},
      {"truncated", truncated.path(), "truncated archive"},
      {"end cut off", cut_at_end.path(), "truncated archive"},
      {"torch.save state dict of one tensor", model_data("state_dict.pt"),
       "not a CLIP ViT checkpoint: missing parameters visual.conv1.weight"},
      {"missing parameter", model_data("missing_proj.pt"), "missing parameter visual.proj"},
      {"inconsistent shape", model_data("bad_shape.pt"),
       "visual.proj has shape [17, 8], expected [W, E] = [16, 8]"},
      {"heads do not divide width", model_data("bad_heads.pt"),
       "vision width 16 cannot be split into 3 heads"},
      {"rollout depth beyond the layers", model_data("bad_start_layer.pt"),
       "config.json: relevance_start_layer must be an integer from -1 to 0 (the vision tower "
       "has 1 layers; -1 = the last only), not 1"},
      {"ResNet CLIP", model_data("resnet.pt"), "ResNet CLIP models are not supported"},
  };
  for (const auto& bad : cases) expect_model_error(bad);
}

}  // namespace
}  // namespace clipxai
