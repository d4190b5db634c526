#include "clipxai/render.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace clipxai {
namespace {

// The notebook's map: interpolate the grid bilinearly to `size` x `size`, then min–max normalise.
torch::Tensor notebook_map(const torch::Tensor& grid, int size) {
  namespace F = torch::nn::functional;
  torch::Tensor map = F::interpolate(grid.reshape({1, 1, grid.size(0), grid.size(1)}),
                                     F::InterpolateFuncOptions()
                                         .size(std::vector<int64_t>{size, size})
                                         .mode(torch::kBilinear)
                                         .align_corners(false))
                          .reshape({size, size});
  return (map - map.min()) / (map.max() - map.min());
}

torch::Tensor as_tensor(const cv::Mat& values) {
  return torch::from_blob(values.clone().data, {values.rows, values.cols}, torch::kFloat).clone();
}

torch::Tensor random_grid(int cells, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::rand({cells, cells});
}

struct CropCase {
  std::string name;
  int width, height;
  CropRegion crop;
  cv::Rect shown;       // expected pixels with a map
  cv::Rect from_model;  // the same pixels within the notebook's crop-sized map
};

void PrintTo(const CropCase& c, std::ostream* out) { *out << c.name; }

class UpsampleCrop : public testing::TestWithParam<CropCase> {};

// Upsampling to the crop's size in original pixels is the notebook's interpolation; only the part
// of the crop that lies on the image is shown, renormalised over that part.
TEST_P(UpsampleCrop, MatchesNotebookInterpolationInsideShownRegion) {
  const CropCase& c = GetParam();
  const torch::Tensor grid = random_grid(7, 3);
  const RelevanceMap map = upsample_map(grid, c.crop, c.width, c.height);

  ASSERT_EQ(map.values.cols, c.width);
  ASSERT_EQ(map.values.rows, c.height);
  EXPECT_EQ(map.shown, c.shown);

  torch::Tensor expected = notebook_map(grid, static_cast<int>(c.crop.width))
                               .slice(0, c.from_model.y, c.from_model.br().y)
                               .slice(1, c.from_model.x, c.from_model.br().x);
  expected = (expected - expected.min()) / (expected.max() - expected.min());
  const torch::Tensor values = as_tensor(map.values);
  const torch::Tensor shown =
      values.slice(0, c.shown.y, c.shown.br().y).slice(1, c.shown.x, c.shown.br().x);
  EXPECT_LT((shown - expected).abs().max().item<float>(), 1e-5f);
  EXPECT_EQ(cv::countNonZero(map.values), cv::countNonZero(map.values(c.shown)))
      << "no values outside the shown region";
  EXPECT_TRUE(c.shown.contains(map.peak));
}

INSTANTIATE_TEST_SUITE_P(
    Crops, UpsampleCrop,
    testing::Values(
        CropCase{"square", 224, 224, {0, 0, 224, 224}, {0, 0, 224, 224}, {0, 0, 224, 224}},
        CropCase{"center_wide", 320, 224, {48, 0, 224, 224}, {48, 0, 224, 224}, {0, 0, 224, 224}},
        CropCase{"center_tall", 64, 100, {0, 18, 64, 64}, {0, 18, 64, 64}, {0, 0, 64, 64}},
        CropCase{"pad_wide", 224, 112, {0, -56, 224, 224}, {0, 0, 224, 112}, {0, 56, 224, 112}},
        CropCase{"pad_tall", 50, 100, {-25, 0, 100, 100}, {0, 0, 50, 100}, {25, 0, 50, 100}}),
    [](const testing::TestParamInfo<CropCase>& info) { return info.param.name; });

struct PeakCase {
  std::string name;
  int width, height;
  CropRegion crop;
  int hot_row, hot_col;
  cv::Rect expected;  // where the peak must lie: the hot cell's pixels
};

void PrintTo(const PeakCase& c, std::ostream* out) { *out << c.name; }

class Peak : public testing::TestWithParam<PeakCase> {};

TEST_P(Peak, LiesInTheHotCellInOriginalPixels) {
  const PeakCase& c = GetParam();
  torch::Tensor grid = torch::zeros({7, 7});
  grid[c.hot_row][c.hot_col] = 1.0f;
  const RelevanceMap map = upsample_map(grid, c.crop, c.width, c.height);
  EXPECT_TRUE(c.expected.contains(map.peak)) << map.peak;
  EXPECT_FLOAT_EQ(map.values.at<float>(map.peak), 1.0f);
}

INSTANTIATE_TEST_SUITE_P(
    Cells, Peak,
    testing::Values(
        // 64 original pixels per cell; the cell's centre is where the interpolation peaks.
        PeakCase{"square", 448, 448, {0, 0, 448, 448}, 2, 5, {5 * 64 + 31, 2 * 64 + 31, 2, 2}},
        // Centre crop of a 640x448 image: the crop starts at x = 96.
        PeakCase{"center", 640, 448, {96, 0, 448, 448}, 0, 0, {96, 0, 32, 32}},
        PeakCase{"center_last", 640, 448, {96, 0, 448, 448}, 6, 6, {96 + 416, 416, 32, 32}},
        // Pad: a 448x224 image in a 448 square from y = -112; row 2 starts at y = 128 - 112.
        PeakCase{"pad", 448, 224, {0, -112, 448, 448}, 2, 3, {3 * 64 + 31, 16 + 31, 2, 2}}),
    [](const testing::TestParamInfo<PeakCase>& info) { return info.param.name; });

TEST(UpsampleMap, ConstantGridGivesZerosWithoutNaN) {
  const RelevanceMap map = upsample_map(torch::full({7, 7}, 0.25f), {10, 0, 100, 100}, 120, 100);
  EXPECT_EQ(cv::countNonZero(map.values), 0);
  EXPECT_TRUE(cv::checkRange(map.values));
  EXPECT_TRUE(map.shown.contains(map.peak));
}

TEST(UpsampleMap, FractionalCropShowsPixelsWhoseCentresItCovers) {
  // Pixel x is shown when x + 0.5 lies in [10.4, 109.6): x = 10..109; y + 0.5 in [0.6, 98.6):
  // y = 1..98.
  const RelevanceMap map = upsample_map(random_grid(4, 5), {10.4, 0.6, 99.2, 98.0}, 120, 100);
  EXPECT_EQ(map.shown, cv::Rect(10, 1, 100, 98));
}

TEST(UpsampleMap, TinyImageShowsItsOnePixel) {
  const RelevanceMap map = upsample_map(random_grid(7, 1), {0, 0, 1, 1}, 1, 1);
  EXPECT_EQ(map.shown, cv::Rect(0, 0, 1, 1));
  EXPECT_EQ(map.peak, cv::Point(0, 0));
}

TEST(Colormaps, NamesAreOpenCVsMaps) {
  const auto& names = colormaps_by_name();
  EXPECT_EQ(names.at("jet"), cv::COLORMAP_JET);
  EXPECT_EQ(names.at("viridis"), cv::COLORMAP_VIRIDIS);
  EXPECT_EQ(names.at("turbo"), cv::COLORMAP_TURBO);
  EXPECT_EQ(OverlayStyle{}.colormap, cv::COLORMAP_JET);
}

// A 100x60 grey image whose centre crop is the middle 60x60 square; the map rises left to right.
struct OverlayFixture {
  cv::Mat image{60, 100, CV_8UC3, cv::Scalar(200, 200, 200)};
  RelevanceMap map =
      upsample_map(torch::arange(4, torch::kFloat).repeat({4, 1}), {20, 0, 60, 60}, 100, 60);
};

cv::Vec3b heat_rgb(float value, int colormap) {
  cv::Mat level(1, 1, CV_8U, cv::Scalar(std::round(value * 255)));
  cv::Mat heat;
  cv::applyColorMap(level, heat, colormap);
  const cv::Vec3b bgr = heat.at<cv::Vec3b>(0, 0);
  return {bgr[2], bgr[1], bgr[0]};
}

TEST(RenderOverlay, DimsOutsideTheCropAndBlendsInside) {
  OverlayFixture f;
  const OverlayStyle style{0.5, cv::COLORMAP_JET};
  const cv::Mat overlay = render_overlay(f.image, f.map, style);
  ASSERT_EQ(overlay.size(), f.image.size());
  ASSERT_EQ(overlay.type(), CV_8UC3);

  const uchar dimmed = static_cast<uchar>(std::lround(200 * kOutsideCropBrightness));
  for (const cv::Point outside : {cv::Point(0, 0), cv::Point(19, 30), cv::Point(80, 59)}) {
    EXPECT_EQ(overlay.at<cv::Vec3b>(outside), cv::Vec3b(dimmed, dimmed, dimmed)) << outside;
  }
  for (const cv::Point inside : {cv::Point(20, 0), cv::Point(50, 30), cv::Point(79, 59)}) {
    const cv::Vec3b heat = heat_rgb(f.map.values.at<float>(inside), style.colormap);
    for (int channel = 0; channel < 3; ++channel) {
      EXPECT_NEAR(overlay.at<cv::Vec3b>(inside)[channel], 0.5 * 200 + 0.5 * heat[channel], 1.0)
          << inside << " channel " << channel;
    }
  }
}

TEST(RenderOverlay, AlphaOneShowsTheColormapInRgbOrder) {
  OverlayFixture f;
  for (const auto& [name, colormap] : colormaps_by_name()) {
    const cv::Mat overlay = render_overlay(f.image, f.map, {1.0, colormap});
    // Left edge of the crop holds the minimum, right edge the maximum.
    EXPECT_EQ(overlay.at<cv::Vec3b>(30, 20), heat_rgb(0.0f, colormap)) << name;
    EXPECT_EQ(overlay.at<cv::Vec3b>(30, 79), heat_rgb(1.0f, colormap)) << name;
  }
  // Jet runs from dark blue to dark red: red channel first in RGB.
  const cv::Mat jet = render_overlay(f.image, f.map, {1.0, cv::COLORMAP_JET});
  EXPECT_GT(jet.at<cv::Vec3b>(30, 79)[0], 100);
  EXPECT_EQ(jet.at<cv::Vec3b>(30, 79)[2], 0);
}

TEST(RenderOverlay, AlphaZeroKeepsTheImageInsideTheCrop) {
  OverlayFixture f;
  const cv::Mat overlay = render_overlay(f.image, f.map, {0.0, cv::COLORMAP_JET});
  EXPECT_EQ(cv::norm(overlay(f.map.shown), f.image(f.map.shown), cv::NORM_INF), 0.0);
}

}  // namespace
}  // namespace clipxai
