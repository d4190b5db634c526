// Pillow's antialiased bicubic resampling (libImaging/Resample.c, Pillow 9.4), reproduced so that
// clipxai feeds the model exactly the pixels CLIP's Python preprocessing would.
#include "resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "clipxai/error.h"

namespace clipxai {
namespace {

// Pillow keeps 8-bit weights in 22 fractional bits: 8 bits for the sample and 2 spare bits,
// because bicubic weights can sum above 1 or be negative along the way.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;

// Keys' cubic with a = -0.5, written in Pillow's operation order so the doubles match.
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// For each output sample in [begin, end) of an axis resized from in_size to out_size: the first
// contributing input sample, how many contribute, and their fixed-point weights.
struct AxisWeights {
  int taps_capacity = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;  // [end - begin][taps_capacity]
};

// Pillow's precompute_coeffs followed by normalize_coeffs_8bpc.
AxisWeights bicubic_weights(int in_size, int out_size, int begin, int end) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filter_scale;
  const double inverse_filter_scale = 1.0 / filter_scale;

  AxisWeights axis;
  axis.taps_capacity = static_cast<int>(std::ceil(support)) * 2 + 1;
  const int outputs = end - begin;
  axis.first.resize(outputs);
  axis.count.resize(outputs);
  axis.weights.assign(static_cast<size_t>(outputs) * axis.taps_capacity, 0);
  std::vector<double> taps(axis.taps_capacity);
  for (int out = begin; out < end; ++out) {
    const double center = (out + 0.5) * scale;
    // Truncating casts, as in C: they round because of the + 0.5.
    const int first = std::max(static_cast<int>(center - support + 0.5), 0);
    const int count = std::min(static_cast<int>(center + support + 0.5), in_size) - first;
    double sum = 0.0;
    for (int i = 0; i < count; ++i) {
      taps[i] = bicubic((i + first - center + 0.5) * inverse_filter_scale);
      sum += taps[i];
    }
    int32_t* weights = &axis.weights[static_cast<size_t>(out - begin) * axis.taps_capacity];
    for (int i = 0; i < count; ++i) {
      const double normalised = sum != 0.0 ? taps[i] / sum : taps[i];
      const double fixed = normalised * (1 << kPrecisionBits);
      weights[i] = static_cast<int32_t>(normalised < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    axis.first[out - begin] = first;
    axis.count[out - begin] = count;
  }
  return axis;
}

uint8_t clip_to_byte(int32_t accumulator) {
  return static_cast<uint8_t>(std::clamp(accumulator >> kPrecisionBits, 0, 255));
}

constexpr int32_t kRoundingHalf = 1 << (kPrecisionBits - 1);

// Resamples the columns of `source` (CV_8UC3) into `columns.first.size()` output columns.
cv::Mat resample_rows(const cv::Mat& source, const AxisWeights& columns) {
  const int out_width = static_cast<int>(columns.first.size());
  cv::Mat out(source.rows, out_width, CV_8UC3);
  for (int y = 0; y < source.rows; ++y) {
    const uint8_t* in_row = source.ptr<uint8_t>(y);
    uint8_t* out_row = out.ptr<uint8_t>(y);
    for (int x = 0; x < out_width; ++x) {
      const int32_t* weights = &columns.weights[static_cast<size_t>(x) * columns.taps_capacity];
      const uint8_t* in = in_row + 3 * columns.first[x];
      int32_t sum[3] = {kRoundingHalf, kRoundingHalf, kRoundingHalf};
      for (int i = 0; i < columns.count[x]; ++i) {
        for (int c = 0; c < 3; ++c) sum[c] += in[3 * i + c] * weights[i];
      }
      for (int c = 0; c < 3; ++c) out_row[3 * x + c] = clip_to_byte(sum[c]);
    }
  }
  return out;
}

// Resamples the rows of `source` (CV_8UC3); `rows.first` counts from source row `row_offset`.
cv::Mat resample_columns(const cv::Mat& source, const AxisWeights& rows, int row_offset) {
  const int out_height = static_cast<int>(rows.first.size());
  const int samples = source.cols * 3;
  cv::Mat out(out_height, source.cols, CV_8UC3);
  std::vector<int32_t> sum(samples);
  for (int y = 0; y < out_height; ++y) {
    std::fill(sum.begin(), sum.end(), kRoundingHalf);
    const int32_t* weights = &rows.weights[static_cast<size_t>(y) * rows.taps_capacity];
    for (int i = 0; i < rows.count[y]; ++i) {
      const uint8_t* in_row = source.ptr<uint8_t>(rows.first[y] + i - row_offset);
      for (int s = 0; s < samples; ++s) sum[s] += in_row[s] * weights[i];
    }
    uint8_t* out_row = out.ptr<uint8_t>(y);
    for (int s = 0; s < samples; ++s) out_row[s] = clip_to_byte(sum[s]);
  }
  return out;
}

}  // namespace

cv::Mat resize_bicubic_window(const cv::Mat& rgb, cv::Size out_size, cv::Rect window) {
  if (rgb.type() != CV_8UC3 || rgb.empty() || out_size.width < 1 || out_size.height < 1 ||
      (window & cv::Rect({}, out_size)) != window || window.empty()) {
    throw Error(ErrorCategory::Internal,
                "resize_bicubic: expected a non-empty 8-bit RGB image, "
                "a positive size and a window inside it");
  }
  // Every output pixel depends only on its own weights, so computing just the window gives the
  // same values as Pillow's full resize followed by a crop. Pillow skips a pass whose axis keeps
  // its size; that pass would be the identity anyway.
  const bool resize_rows = out_size.height != rgb.rows;
  AxisWeights rows;
  int first_row = window.y;
  int end_row = window.br().y;
  if (resize_rows) {
    rows = bicubic_weights(rgb.rows, out_size.height, window.y, window.br().y);
    first_row = rows.first.front();
    end_row = rows.first.back() + rows.count.back();
  }
  const cv::Mat used_rows = rgb.rowRange(first_row, end_row);
  const cv::Mat horizontal =
      out_size.width != rgb.cols
          ? resample_rows(used_rows,
                          bicubic_weights(rgb.cols, out_size.width, window.x, window.br().x))
          : used_rows.colRange(window.x, window.br().x);
  return resize_rows ? resample_columns(horizontal, rows, first_row) : horizontal.clone();
}

cv::Mat resize_bicubic(const cv::Mat& rgb, int out_width, int out_height) {
  const cv::Size out_size(out_width, out_height);
  return resize_bicubic_window(rgb, out_size, cv::Rect({}, out_size));
}

}  // namespace clipxai
