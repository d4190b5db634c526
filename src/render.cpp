#include "clipxai/render.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "clipxai/error.h"

namespace clipxai {
namespace {

// One output pixel's two source cells and the weight of the second, as PyTorch's bilinear
// interpolation with align_corners=False computes them.
struct LinearTap {
  int first = 0;
  int second = 0;
  float weight = 0;
};

// Taps for output pixels [begin, end) along one axis whose crop starts at `crop_start` and spans
// `crop_size` original pixels, sampling `cells` grid cells.
std::vector<LinearTap> linear_taps(int begin, int end, double crop_start, double crop_size,
                                   int cells) {
  std::vector<LinearTap> taps;
  taps.reserve(end - begin);
  const double cells_per_pixel = cells / crop_size;
  for (int pixel = begin; pixel < end; ++pixel) {
    const double source = std::max(0.0, (pixel + 0.5 - crop_start) * cells_per_pixel - 0.5);
    const int first = std::min(static_cast<int>(source), cells - 1);
    const int second = std::min(first + 1, cells - 1);
    taps.push_back({first, second, static_cast<float>(source - first)});
  }
  return taps;
}

// The pixel range [begin, end) whose centres lie in [start, start + size), clipped to [0, limit)
// and widened to at least one pixel so that even a sliver of a crop shows.
std::pair<int, int> pixels_inside(double start, double size, int limit) {
  int begin = std::clamp(static_cast<int>(std::ceil(start - 0.5)), 0, limit - 1);
  int end = std::clamp(static_cast<int>(std::ceil(start + size - 0.5)), begin + 1, limit);
  return {begin, end};
}

}  // namespace

RelevanceMap upsample_map(const torch::Tensor& grid, const CropRegion& crop, int width,
                          int height) {
  if (grid.dim() != 2 || grid.size(0) < 1 || grid.size(1) < 1) {
    throw Error(ErrorCategory::Internal, "relevance grid must be a non-empty 2-D tensor");
  }
  if (width < 1 || height < 1 || !(crop.width > 0) || !(crop.height > 0)) {
    throw Error(ErrorCategory::Internal, "cannot render a map on an empty image or crop");
  }
  const torch::Tensor cells = grid.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const int rows = static_cast<int>(cells.size(0));
  const int cols = static_cast<int>(cells.size(1));
  const float* cell = cells.data_ptr<float>();

  const auto [x_begin, x_end] = pixels_inside(crop.x, crop.width, width);
  const auto [y_begin, y_end] = pixels_inside(crop.y, crop.height, height);
  const std::vector<LinearTap> x_taps = linear_taps(x_begin, x_end, crop.x, crop.width, cols);
  const std::vector<LinearTap> y_taps = linear_taps(y_begin, y_end, crop.y, crop.height, rows);

  RelevanceMap map;
  map.shown = cv::Rect(x_begin, y_begin, x_end - x_begin, y_end - y_begin);
  map.values = cv::Mat::zeros(height, width, CV_32F);
  cv::Mat shown = map.values(map.shown);

  // Separable: interpolate every grid row along x, then those rows along y.
  cv::Mat along_x(rows, shown.cols, CV_32F);
  for (int r = 0; r < rows; ++r) {
    float* out = along_x.ptr<float>(r);
    const float* in = cell + static_cast<size_t>(r) * cols;
    for (int i = 0; i < shown.cols; ++i) {
      const LinearTap& tap = x_taps[i];
      out[i] = in[tap.first] + tap.weight * (in[tap.second] - in[tap.first]);
    }
  }
  for (int j = 0; j < shown.rows; ++j) {
    const LinearTap& tap = y_taps[j];
    const float* top = along_x.ptr<float>(tap.first);
    const float* bottom = along_x.ptr<float>(tap.second);
    float* out = shown.ptr<float>(j);
    for (int i = 0; i < shown.cols; ++i) out[i] = top[i] + tap.weight * (bottom[i] - top[i]);
  }

  double low = 0, high = 0;
  cv::Point peak_in_shown;
  cv::minMaxLoc(shown, &low, &high, nullptr, &peak_in_shown);
  map.peak = peak_in_shown + map.shown.tl();
  if (high > low) {
    shown.convertTo(shown, CV_32F, 1.0 / (high - low), -low / (high - low));
  } else {
    shown.setTo(0.0f);
  }
  return map;
}

const std::map<std::string, int>& colormaps_by_name() {
  static const std::map<std::string, int> names = {
      {"autumn", cv::COLORMAP_AUTUMN},   {"bone", cv::COLORMAP_BONE},
      {"cividis", cv::COLORMAP_CIVIDIS}, {"cool", cv::COLORMAP_COOL},
      {"hot", cv::COLORMAP_HOT},         {"hsv", cv::COLORMAP_HSV},
      {"inferno", cv::COLORMAP_INFERNO}, {"jet", cv::COLORMAP_JET},
      {"magma", cv::COLORMAP_MAGMA},     {"ocean", cv::COLORMAP_OCEAN},
      {"parula", cv::COLORMAP_PARULA},   {"pink", cv::COLORMAP_PINK},
      {"plasma", cv::COLORMAP_PLASMA},   {"rainbow", cv::COLORMAP_RAINBOW},
      {"spring", cv::COLORMAP_SPRING},   {"summer", cv::COLORMAP_SUMMER},
      {"turbo", cv::COLORMAP_TURBO},     {"twilight", cv::COLORMAP_TWILIGHT},
      {"viridis", cv::COLORMAP_VIRIDIS}, {"winter", cv::COLORMAP_WINTER},
  };
  return names;
}

cv::Mat render_overlay(const cv::Mat& rgb, const RelevanceMap& map, const OverlayStyle& style) {
  if (rgb.type() != CV_8UC3 || rgb.size() != map.values.size()) {
    throw Error(ErrorCategory::Internal, "overlay needs an 8-bit RGB image the size of its map");
  }
  cv::Mat overlay;
  rgb.convertTo(overlay, CV_8UC3, kOutsideCropBrightness);

  cv::Mat levels;
  map.values(map.shown).convertTo(levels, CV_8U, 255.0);
  cv::Mat heat;
  cv::applyColorMap(levels, heat, style.colormap);
  cv::cvtColor(heat, heat, cv::COLOR_BGR2RGB);
  cv::Mat shown = overlay(map.shown);
  cv::addWeighted(rgb(map.shown), 1.0 - style.alpha, heat, style.alpha, 0.0, shown);
  return overlay;
}

}  // namespace clipxai
