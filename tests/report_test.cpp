#include "clipxai/report.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace clipxai {
namespace {

using nlohmann::json;

ModelConfig small_config() {
  ModelConfig config;
  config.name = "tiny";
  config.input_resolution = 64;
  config.patch_size = 16;
  config.grid = 4;
  config.vision_width = 128;
  config.vision_layers = 6;
  config.vision_heads = 2;
  config.embed_dim = 32;
  config.context_length = 16;
  config.vocab_size = 600;
  config.text_width = 64;
  config.text_layers = 3;
  config.text_heads = 1;
  return config;
}

PromptResult prompt_result(const std::string& text, std::vector<std::string> tokens,
                           std::vector<float> relevance) {
  PromptResult result;
  result.prompt.text = text;
  result.prompt.tokens = std::move(tokens);
  result.relevance.logit = 21.5;
  result.relevance.cosine = 0.215;
  result.relevance.probability = 0.75;
  result.relevance.grid = torch::tensor({{0.1f, 0.2f}, {0.3f, 1.0f / 3.0f}});
  result.relevance.token_relevance = std::move(relevance);
  result.peak = {40, 7};
  result.overlay = "out/photo__" + text + ".png";
  return result;
}

ImageResult image_result() {
  ImageResult result{"photo.jpg", 80, 60, {10, 0, 60, 60}, {}};
  result.prompts.push_back(prompt_result("dog", {"dog"}, {1.0f}));
  result.prompts.push_back(prompt_result("a cat", {"a", "cat"}, {0.25f, 0.75f}));
  result.prompts.back().raw = "out/photo__a-cat.npy";
  result.prompts.back().prompt.truncated = true;
  return result;
}

std::vector<std::string> keys(const json& object) {
  std::vector<std::string> names;
  for (const auto& item : object.items()) names.push_back(item.key());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(ImageResultJson, HasTheDocumentedFields) {
  const json result = image_result_json(image_result());
  EXPECT_EQ(keys(result),
            (std::vector<std::string>{"crop", "height", "image", "prompts", "width"}));
  EXPECT_EQ(result["image"], "photo.jpg");
  EXPECT_EQ(result["width"], 80);
  EXPECT_EQ(result["height"], 60);
  EXPECT_EQ(result["crop"], json({{"x", 10.0}, {"y", 0.0}, {"width", 60.0}, {"height", 60.0}}));

  ASSERT_EQ(result["prompts"].size(), 2u);
  const json& dog = result["prompts"][0];
  EXPECT_EQ(keys(dog),
            (std::vector<std::string>{"cosine", "grid", "logit", "overlay", "peak", "probability",
                                      "raw", "text", "tokens", "truncated"}));
  EXPECT_EQ(dog["text"], "dog");
  EXPECT_DOUBLE_EQ(dog["logit"].get<double>(), 21.5);
  EXPECT_DOUBLE_EQ(dog["cosine"].get<double>(), 0.215);
  EXPECT_DOUBLE_EQ(dog["probability"].get<double>(), 0.75);
  EXPECT_EQ(dog["peak"], json({40, 7}));
  EXPECT_EQ(dog["overlay"], "out/photo__dog.png");
  EXPECT_TRUE(dog["raw"].is_null());
  EXPECT_EQ(dog["truncated"], false);
  EXPECT_EQ(dog["tokens"], json::parse(R"([{"token": "dog", "relevance": 1.0}])"));

  const json& cat = result["prompts"][1];
  EXPECT_EQ(cat["raw"], "out/photo__a-cat.npy");
  EXPECT_EQ(cat["truncated"], true);
  EXPECT_EQ(cat["tokens"][1]["token"], "cat");
  EXPECT_DOUBLE_EQ(cat["tokens"][1]["relevance"].get<double>(), 0.75);
}

TEST(ImageResultJson, GridIsRowsTopFirstInShortestFloatForm) {
  const json grid = image_result_json(image_result())["prompts"][0]["grid"];
  EXPECT_EQ(grid.dump(), "[[0.1,0.2],[0.3,0.33333334]]");
  EXPECT_EQ(grid[1][1].get<float>(), 1.0f / 3.0f) << "reads back as the same float32";
}

TEST(ImageResultJson, MismatchedTokenRelevanceIsAnInternalError) {
  ImageResult result = image_result();
  result.prompts[0].relevance.token_relevance = {0.5f, 0.5f};
  try {
    image_result_json(result);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Internal);
  }
}

struct StartLayerCase {
  int requested_vision, requested_text;
  int effective_vision, effective_text;
};

class EffectiveStartLayers : public testing::TestWithParam<StartLayerCase> {};

TEST_P(EffectiveStartLayers, ResolveTheLastLayerDefault) {
  const StartLayerCase& c = GetParam();
  const json method = method_json(
      *create_method("chefer2021", start_layer_parameters({c.requested_vision, c.requested_text}),
                     small_config(), MethodDefaults{}),
      CropMode::Pad);
  EXPECT_EQ(method["start_layer"], c.effective_vision);
  EXPECT_EQ(method["start_layer_text"], c.effective_text);
  EXPECT_EQ(method, json({{"name", "chefer2021-gradient-rollout"},
                          {"start_layer", c.effective_vision},
                          {"start_layer_text", c.effective_text},
                          {"crop", "pad"}}));
}

INSTANTIATE_TEST_SUITE_P(Layers, EffectiveStartLayers,
                         testing::Values(StartLayerCase{-1, -1, 5, 2}, StartLayerCase{0, 0, 0, 0},
                                         StartLayerCase{3, 1, 3, 1}));

TEST(ModelJson, DescribesTheArchitecture) {
  const ModelConfig config = small_config();
  const MethodDefaults defaults{0, -1};
  const json model = model_json("models/tiny.pt", config, defaults, "embedded in models/tiny.pt");
  EXPECT_EQ(keys(model), (std::vector<std::string>{"activation",
                                                   "context_length",
                                                   "embed_dim",
                                                   "grid",
                                                   "image_mean",
                                                   "image_std",
                                                   "name",
                                                   "patch_size",
                                                   "path",
                                                   "relevance_start_layer",
                                                   "relevance_start_layer_text",
                                                   "resolution",
                                                   "text_heads",
                                                   "text_layers",
                                                   "text_width",
                                                   "tokenizer",
                                                   "vision_heads",
                                                   "vision_layers",
                                                   "vision_width",
                                                   "vocab_size"}));
  // The default rollout depth, resolved as "method" records it: the declared first layer, and
  // the text tower's last layer (-1, undeclared).
  EXPECT_EQ(model["relevance_start_layer"], 0);
  EXPECT_EQ(model["relevance_start_layer_text"], 2);
  EXPECT_EQ(model["path"], "models/tiny.pt");
  EXPECT_EQ(model["grid"], 4);
  EXPECT_EQ(model["vision_layers"], 6);
  EXPECT_EQ(model["activation"], "quick_gelu");
  EXPECT_EQ(model["image_mean"].dump(), "[0.48145467,0.4578275,0.40821072]");
  EXPECT_EQ(model["tokenizer"], "embedded in models/tiny.pt");
}

TEST(ReportJson, AssemblesModelMethodResultsAndErrors) {
  const json model = model_json("m.pt", small_config(), MethodDefaults{}, "v.txt.gz");
  const json method = method_json(
      *create_method("chefer2021", {}, small_config(), MethodDefaults{}), CropMode::Center);
  const json report = report_json(model, method, {image_result()},
                                  {{"broken.png", ErrorCategory::Input, "broken.png: truncated"}});
  EXPECT_EQ(keys(report),
            (std::vector<std::string>{"clipxai_version", "errors", "method", "model", "results"}));
  EXPECT_EQ(report["model"], model);
  EXPECT_EQ(report["method"]["start_layer"], 5);
  EXPECT_EQ(report["results"], json::array({image_result_json(image_result())}));
  EXPECT_EQ(report["errors"], json::parse(R"([{"image": "broken.png", "category": "input",
                                              "message": "broken.png: truncated"}])"));
  EXPECT_EQ(report_json(model, {}, {}, {})["errors"], json::array());
}

TEST(ConsoleLines, OneAlignedLinePerPrompt) {
  const std::vector<std::string> lines = console_lines(image_result());
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "\"dog\"    p=0.7500  logit=21.500  peak=(40,7)  -> out/photo__dog.png",
                       "\"a cat\"  p=0.7500  logit=21.500  peak=(40,7)  -> out/photo__a cat.png"
                       "  [truncated to fit the context]"}));
}

TEST(ConsoleLines, AlignByCharactersNotBytes) {
  ImageResult result = image_result();
  result.prompts[0].prompt.text = "café";  // 4 characters, 5 bytes
  result.prompts[1].prompt.text = "cafe";
  const std::vector<std::string> lines = console_lines(result);
  EXPECT_EQ(lines[0].find("  p="), std::string("\"café\"").size());
  EXPECT_EQ(lines[1].find("  p="), std::string("\"cafe\"").size());
}

}  // namespace
}  // namespace clipxai
