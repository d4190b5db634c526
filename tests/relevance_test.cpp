// explain_image against the notebook algorithm (scripts/make_reference_models.py, in PyTorch) on
// random-weight archives: logits, cosines, probabilities, image grids and text relevance for the
// last-layer, all-layer and middle start layers; the model-declared default start layers; plus
// the per-prompt batching, prompts prepared once for several images, and the usage errors.
#include "clipxai/relevance.h"

#include <iostream>

#include <gtest/gtest.h>

#include "clipxai/error.h"
#include "model_reference.h"

namespace clipxai {
namespace {

using testing::model_data;
using testing::Reference;
using testing::relative_error;
using testing::to_tensor;

constexpr double kLogitTolerance = 2e-3;          // absolute
constexpr double kGridTolerance = 2e-3;           // max|a-b| / max|b|
constexpr double kTextRelevanceTolerance = 2e-3;  // absolute, relevances sum to 1

class ReferenceRelevance : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceRelevance, MatchesTheNotebookAlgorithm) {
  const Reference reference(GetParam());
  const auto model = ClipModel::load(reference.archive());
  const auto images = reference.images();
  const auto prompts = reference.prompts();
  double worst_logit = 0, worst_grid = 0, worst_text = 0;
  for (const auto& expected : reference.json["cases"]) {
    const RelevanceOptions options{expected["start_layer"].get<int>(),
                                   expected["start_layer_text"].get<int>()};
    const int image = expected["image"].get<int>();
    SCOPED_TRACE("image " + std::to_string(image) + ", start layers " +
                 std::to_string(*options.start_layer) + "/" +
                 std::to_string(*options.start_layer_text));
    const auto results = explain_image(model, images[image], prompts, options);
    ASSERT_EQ(results.size(), prompts.size());
    for (size_t p = 0; p < prompts.size(); ++p) {
      SCOPED_TRACE("prompt " + std::to_string(p));
      const auto& result = results[p];
      EXPECT_NEAR(result.logit, expected["logits"][p].get<double>(), kLogitTolerance);
      EXPECT_NEAR(result.cosine, expected["cosines"][p].get<double>(), kLogitTolerance / 100);
      EXPECT_NEAR(result.probability, expected["probabilities"][p].get<double>(), 1e-3);
      const auto grid = to_tensor(expected["grids"][p]);
      ASSERT_EQ(result.grid.sizes(), grid.sizes());
      const double grid_error = relative_error(result.grid, grid);
      EXPECT_LT(grid_error, kGridTolerance);
      const auto text = to_tensor(expected["text_relevance"][p]);
      ASSERT_EQ(result.token_relevance.size(), static_cast<size_t>(text.numel()));
      const double text_error =
          (torch::tensor(result.token_relevance) - text).abs().max().item<double>();
      EXPECT_LT(text_error, kTextRelevanceTolerance);
      worst_logit =
          std::max(worst_logit, std::abs(result.logit - expected["logits"][p].get<double>()));
      worst_grid = std::max(worst_grid, grid_error);
      worst_text = std::max(worst_text, text_error);
    }
  }
  std::cout << testing::reference_name(GetParam()) << ": worst logit error " << worst_logit
            << ", grid relative error " << worst_grid << ", text relevance error " << worst_text
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(Archives, ReferenceRelevance,
                         ::testing::ValuesIn(testing::reference_files()),
                         [](const auto& info) { return testing::reference_name(info.param); });

class TinyModel : public ::testing::Test {
 protected:
  Reference reference{model_data("tiny_vit.reference.json")};
  ClipModel model = ClipModel::load(reference.archive());
  torch::Tensor image = reference.images()[0];
  std::vector<TokenizedText> prompts = reference.prompts();
};

// Each prompt's gradients come from the one backward pass over the whole batch; explaining a
// prompt alone must give the same answer.
TEST_F(TinyModel, PromptsDoNotInfluenceEachOther) {
  for (const RelevanceOptions options : {RelevanceOptions{-1, -1}, RelevanceOptions{0, 0}}) {
    const auto batch = explain_image(model, image, prompts, options);
    for (size_t p = 0; p < prompts.size(); ++p) {
      const auto alone = explain_image(model, image, {prompts[p]}, options).front();
      EXPECT_NEAR(alone.logit, batch[p].logit, 1e-4);
      EXPECT_DOUBLE_EQ(alone.probability, 1.0);
      EXPECT_LT(relative_error(alone.grid, batch[p].grid), 1e-5);
      EXPECT_LT((torch::tensor(alone.token_relevance) - torch::tensor(batch[p].token_relevance))
                    .abs()
                    .max()
                    .item<double>(),
                1e-5);
    }
  }
}

// The text blocks before the start layer run once in prepare_prompts; explaining several images
// with one PreparedPrompts must give what explaining each image afresh gives.
TEST_F(TinyModel, PreparedPromptsServeManyImages) {
  for (const RelevanceOptions options :
       {RelevanceOptions{-1, -1}, RelevanceOptions{0, 0}, RelevanceOptions{1, 1}}) {
    const auto prepared = prepare_prompts(model, prompts, options);
    const auto images = reference.images();
    for (int64_t i = 0; i < images.size(0); ++i) {
      const auto reused = explain_image(model, images[i], prepared);
      const auto fresh = explain_image(model, images[i], prompts, options);
      ASSERT_EQ(reused.size(), fresh.size());
      for (size_t p = 0; p < fresh.size(); ++p) {
        EXPECT_EQ(reused[p].logit, fresh[p].logit);
        EXPECT_TRUE(torch::equal(reused[p].grid, fresh[p].grid));
        EXPECT_EQ(reused[p].token_relevance, fresh[p].token_relevance);
      }
    }
  }
}

TEST_F(TinyModel, ProbabilitiesSumToOneAndTokenRelevancesToOne) {
  const auto results = explain_image(model, image, prompts, {});
  double total = 0;
  for (const auto& result : results) {
    total += result.probability;
    double tokens = 0;
    for (float relevance : result.token_relevance) tokens += relevance;
    EXPECT_NEAR(tokens, 1.0, 1e-5);
  }
  EXPECT_NEAR(total, 1.0, 1e-9);
}

struct LabelCase {
  int layers;
  int start_layer;  // effective
  const char* label;
};

class DescribeLayers : public ::testing::TestWithParam<LabelCase> {};

TEST_P(DescribeLayers, SaysWhichLayersEnterTheRollout) {
  EXPECT_EQ(describe_layers(GetParam().start_layer, GetParam().layers), GetParam().label);
}

INSTANTIATE_TEST_SUITE_P(Relevance, DescribeLayers,
                         ::testing::Values(LabelCase{6, 5, "last layer (5)"},
                                           LabelCase{6, 0, "all layers (0-5)"},
                                           LabelCase{6, 3, "layers 3-5"},
                                           LabelCase{1, 0, "last layer (0)"}));

struct StartLayerCase {
  const char* name;
  int model_vision, model_text;  // MethodDefaults::relevance_start_layer*
  RelevanceOptions options;
  int vision, text;  // resolved
};

class ResolveStartLayers : public ::testing::TestWithParam<StartLayerCase> {};

TEST_P(ResolveStartLayers, UnsetMeansTheModelsDefault) {
  ModelConfig config;
  config.vision_layers = 6;
  config.text_layers = 4;
  const MethodDefaults defaults{GetParam().model_vision, GetParam().model_text};
  const StartLayers resolved = resolve_start_layers(GetParam().options, config, defaults);
  EXPECT_EQ(resolved.vision, GetParam().vision);
  EXPECT_EQ(resolved.text, GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    Relevance, ResolveStartLayers,
    ::testing::Values(StartLayerCase{"OpenAIArchiveUnset", -1, -1, {}, 5, 3},
                      StartLayerCase{"ModelDeclaresAllLayers", 0, -1, {}, 0, 3},
                      StartLayerCase{"ModelDeclaresBothTowers", 2, 1, {}, 2, 1},
                      StartLayerCase{"OptionOverridesTheModel", 0, 1, {-1, 0}, 5, 0},
                      StartLayerCase{"OneTowerChosen", 0, 1, {3, std::nullopt}, 3, 1}),
    [](const auto& info) { return std::string(info.param.name); });

// tiny_vit_grid7_gelu's config.json declares its rollout depth; explaining without start layers
// must use it, not the notebook's last layer.
TEST(ModelDefaultStartLayers, ComeFromTheArchive) {
  const Reference reference(model_data("tiny_vit_grid7_gelu.reference.json"));
  const auto model = ClipModel::load(reference.archive());
  const MethodDefaults& config = model.method_defaults();
  ASSERT_EQ(config.relevance_start_layer, reference.json["config"]["relevance_start_layer"]);
  ASSERT_NE(config.relevance_start_layer, -1);
  const auto image = reference.images()[0];
  const auto prompts = reference.prompts();
  const auto unset = explain_image(model, image, prompts, {});
  const auto declared = explain_image(
      model, image, prompts, {config.relevance_start_layer, config.relevance_start_layer_text});
  const auto last_only = explain_image(model, image, prompts, {-1, -1});
  for (size_t p = 0; p < prompts.size(); ++p) {
    EXPECT_TRUE(torch::equal(unset[p].grid, declared[p].grid));
    EXPECT_EQ(unset[p].token_relevance, declared[p].token_relevance);
    EXPECT_FALSE(torch::equal(unset[p].grid, last_only[p].grid));
  }
}

TEST_F(TinyModel, RejectsStartLayersOutsideTheModel) {
  const int vision_layers = model.config().vision_layers;
  const int text_layers = model.config().text_layers;
  for (const RelevanceOptions options :
       {RelevanceOptions{-2, -1}, RelevanceOptions{vision_layers, -1}, RelevanceOptions{-1, -2},
        RelevanceOptions{-1, text_layers}}) {
    try {
      explain_image(model, image, prompts, options);
      ADD_FAILURE() << "start layers " << *options.start_layer << "/" << *options.start_layer_text;
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::Usage);
      EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
    }
  }
}

TEST_F(TinyModel, RejectsNoPromptsAndOverlongPrompts) {
  EXPECT_THROW(explain_image(model, image, std::vector<TokenizedText>{}, RelevanceOptions{}),
               Error);
  auto overlong = prompts.front();
  overlong.ids.resize(static_cast<size_t>(model.config().context_length) + 1, 0);
  try {
    explain_image(model, image, {overlong}, {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::Input);
  }
}

}  // namespace
}  // namespace clipxai
