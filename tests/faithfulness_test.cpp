// faithfulness.h: deletion and insertion against a step-by-step re-computation (its own pixel
// order, one image per forward pass, the probabilities read one by one), the AUC and Spearman
// rules on tables, the randomised model, and the plot.
#include "clipxai/faithfulness.h"

#include <cmath>
#include <numeric>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>

#include "clipxai/relevance.h"
#include "model_reference.h"

namespace clipxai {
namespace {

using testing::model_data;
using testing::Reference;

struct AreaCase {
  std::vector<double> curve;
  double area;
};

class AreaUnderCurve : public ::testing::TestWithParam<AreaCase> {};

TEST_P(AreaUnderCurve, IsTheTrapezoidalRuleOverZeroToOne) {
  EXPECT_DOUBLE_EQ(area_under_curve(GetParam().curve), GetParam().area);
}

INSTANTIATE_TEST_SUITE_P(Faithfulness, AreaUnderCurve,
                         ::testing::Values(AreaCase{{1, 1, 1}, 1}, AreaCase{{0, 1}, 0.5},
                                           AreaCase{{1, 0, 0, 0, 0}, 0.125},
                                           AreaCase{{0, 1, 0}, 0.5}, AreaCase{{0.5}, 0}));

struct SpearmanCase {
  std::vector<float> a, b;
  double expected;  // NaN: undefined
};

class Spearman : public ::testing::TestWithParam<SpearmanCase> {};

TEST_P(Spearman, RanksWithTiesSharingTheirMeanRank) {
  const double value = spearman(torch::tensor(GetParam().a), torch::tensor(GetParam().b));
  if (std::isnan(GetParam().expected)) {
    EXPECT_TRUE(std::isnan(value)) << value;
  } else {
    EXPECT_NEAR(value, GetParam().expected, 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faithfulness, Spearman,
    ::testing::Values(SpearmanCase{{1, 2, 3, 4}, {10, 20, 30, 40}, 1},
                      SpearmanCase{{1, 2, 3, 4}, {4, 3, 2, 1}, -1},
                      SpearmanCase{{1, 2, 3, 4}, {1, 4, 9, 100}, 1},  // monotone, not linear
                      // Ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5).
                      SpearmanCase{{1, 2, 2, 3}, {1, 2, 3, 4}, 4.5 / std::sqrt(4.5 * 5)},
                      SpearmanCase{{5, 5, 5}, {1, 2, 3}, std::nan("")}));

// The protocol written out step by step: pixels sorted by std::stable_sort, each step's image
// built and scored on its own.
std::vector<double> stepwise_curve(const ClipModel& model, const torch::Tensor& pixels,
                                   const torch::Tensor& grid, const torch::Tensor& texts,
                                   int64_t prompt, bool insertion) {
  const int64_t resolution = pixels.size(-1);
  const auto map =
      torch::nn::functional::interpolate(grid.unsqueeze(0).unsqueeze(0),
                                         torch::nn::functional::InterpolateFuncOptions()
                                             .size(std::vector<int64_t>{resolution, resolution})
                                             .mode(torch::kBilinear)
                                             .align_corners(false))
          .flatten()
          .contiguous();
  std::vector<int64_t> order(static_cast<size_t>(map.numel()));
  std::iota(order.begin(), order.end(), 0);
  const float* value = map.data_ptr<float>();
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return value[a] > value[b]; });
  // 11-tap Gaussian of sigma 5 in both directions, zero padding.
  std::vector<double> taps;
  for (int i = -5; i <= 5; ++i) taps.push_back(std::exp(-i * i / 50.0));
  const double total = std::accumulate(taps.begin(), taps.end(), 0.0);
  auto kernel = torch::zeros({3, 1, 11, 11});
  for (int y = 0; y < 11; ++y) {
    for (int x = 0; x < 11; ++x)
      kernel.index_put_({torch::indexing::Slice(), 0, y, x}, taps[y] * taps[x] / (total * total));
  }
  const auto original = pixels.contiguous();
  const auto blurred =
      torch::conv2d(pixels.unsqueeze(0), kernel, {}, 1, 5, 1, 3).squeeze(0).contiguous();
  std::vector<double> curve;
  for (int step = 0; step <= kDeletionSteps; ++step) {
    const auto count = static_cast<size_t>(std::llround(step * map.numel() / 50.0));
    auto image = (insertion ? blurred : original).clone();
    float* out = image.data_ptr<float>();
    const float* in = original.data_ptr<float>();
    const int64_t plane = map.numel();
    for (size_t i = 0; i < count; ++i) {
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t at = c * plane + order[i];
        out[at] = insertion ? in[at] : 0.0f;
      }
    }
    auto features = model.encode_image(image.unsqueeze(0));
    features = features / features.norm(2, -1, true);
    const auto logits = model.logit_scale() * torch::mm(features, texts.t());
    curve.push_back(torch::softmax(logits.to(torch::kDouble), -1)[0][prompt].item<double>());
  }
  return curve;
}

TEST(DeletionInsertion, EqualsTheProtocolComputedStepByStep) {
  const Reference reference(model_data("tiny_vit.reference.json"));
  const auto model = ClipModel::load(reference.archive());
  const auto prompts = reference.prompts();
  const auto pixels = reference.images()[0];
  auto texts = model.encode_text(prompts);
  texts = texts / texts.norm(2, -1, true);
  const auto maps = explain_image(model, pixels, prompts, RelevanceOptions{0, 0});
  for (int64_t prompt = 0; prompt < static_cast<int64_t>(prompts.size()); ++prompt) {
    SCOPED_TRACE("prompt " + std::to_string(prompt));
    const auto& grid = maps[static_cast<size_t>(prompt)].grid;
    const DeletionInsertion result = deletion_insertion(model, pixels, grid, texts, prompt);
    const auto deletion = stepwise_curve(model, pixels, grid, texts, prompt, false);
    const auto insertion = stepwise_curve(model, pixels, grid, texts, prompt, true);
    ASSERT_EQ(result.deletion.size(), 51u);
    ASSERT_EQ(result.insertion.size(), 51u);
    for (size_t i = 0; i < deletion.size(); ++i) {
      EXPECT_NEAR(result.deletion[i], deletion[i], 1e-5) << "step " << i;
      EXPECT_NEAR(result.insertion[i], insertion[i], 1e-5) << "step " << i;
    }
    EXPECT_DOUBLE_EQ(result.deletion_auc, area_under_curve(result.deletion));
    EXPECT_DOUBLE_EQ(result.insertion_auc, area_under_curve(result.insertion));
    // Nothing deleted is the image itself; everything inserted too.
    EXPECT_NEAR(result.deletion.front(), maps[static_cast<size_t>(prompt)].probability, 1e-5);
    EXPECT_NEAR(result.insertion.back(), maps[static_cast<size_t>(prompt)].probability, 1e-5);
  }
}

TEST(RandomisedVisionBlocks, ReplaceTheTopBlocksOnlyAndLeaveTheModelAlone) {
  const auto model = ClipModel::load(model_data("tiny_vit.pt"));
  const auto before = model.weights().vision.transformer.blocks[2].fc_weight.clone();
  const ClipModel randomised = with_randomised_vision_blocks(model, 2, 7);
  const auto& blocks = randomised.weights().vision.transformer.blocks;
  EXPECT_TRUE(blocks[0].fc_weight.equal(model.weights().vision.transformer.blocks[0].fc_weight));
  for (size_t layer : {1u, 2u}) {
    EXPECT_FALSE(
        blocks[layer].fc_weight.equal(model.weights().vision.transformer.blocks[layer].fc_weight));
    EXPECT_TRUE(blocks[layer].ln_1_weight.equal(torch::ones_like(blocks[layer].ln_1_weight)));
    EXPECT_EQ(blocks[layer].q_bias.abs().max().item<float>(), 0);
  }
  const double width = model.config().vision_width;
  EXPECT_NEAR(blocks[2].fc_weight.std().item<double>(), 1 / std::sqrt(2 * width), 0.01);
  EXPECT_TRUE(model.weights().vision.transformer.blocks[2].fc_weight.equal(before));
  EXPECT_TRUE(blocks[2].fc_weight.equal(
      with_randomised_vision_blocks(model, 2, 7).weights().vision.transformer.blocks[2].fc_weight));
  EXPECT_TRUE(randomised.weights().text.transformer.blocks[0].fc_weight.equal(
      model.weights().text.transformer.blocks[0].fc_weight));
}

TEST(Plot, IsAPngWithBothPanels) {
  const std::string png = plot_deletion_insertion(
      {{"chefer2021", {1, 0.5, 0}, {0, 0.5, 1}}, {"rollout", {1, 0.9, 0.1}, {0, 0.2, 1}}});
  const cv::Mat decoded =
      cv::imdecode(std::vector<uchar>(png.begin(), png.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(decoded.empty());
  EXPECT_GT(decoded.cols, decoded.rows);
}

}  // namespace
}  // namespace clipxai
