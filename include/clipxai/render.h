// Rendering a relevance grid onto the original image: the map at the image's resolution, its peak,
// and the overlay picture.
//
// The grid (R[CLS, patches], grid x grid, top row first) describes the model's crop square, which
// image.h reports as a CropRegion in original pixel coordinates. It is upsampled as the authors'
// notebook does (torch.nn.functional.interpolate, mode="bilinear", align_corners=False) to the
// crop's size in original pixels: the centre of original pixel (x, y) maps to grid coordinate
// u = (x + 0.5 - crop.x) * grid / crop.width - 0.5 (clamped to the grid's edge cells), and v alike.
// The map is shown where the model looked: on pixels whose centres lie inside the crop, i.e. the
// centre-crop square (the rest of the image is dimmed) or, for pad mode, the whole image (the
// padding is cut away). Over those pixels the map is min–max normalised to [0, 1] as the notebook
// normalises its 224x224 map; a constant map becomes all zeros. The peak is the first pixel in
// row-major order where the upsampled map is highest.
//
// The overlay blends a colour-mapped map with the image, (1 - alpha) * image + alpha * heat, inside
// the shown region, and dims everything outside it to kOutsideCropBrightness of its brightness.
#pragma once

#include <map>
#include <string>

#include <torch/types.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "clipxai/image.h"

namespace clipxai {

struct RelevanceMap {
  cv::Mat values;  // CV_32F, image height x width; min–max normalised inside `shown`, 0 elsewhere
  cv::Rect shown;  // the pixels the model saw, clipped to the image; never empty
  cv::Point peak;  // (x, y) of the highest value of the upsampled map, inside `shown`
};

// `grid`: [g, g] float tensor on any device. `width`, `height`: the original image's size.
RelevanceMap upsample_map(const torch::Tensor& grid, const CropRegion& crop, int width, int height);

// Colour maps selectable by name (OpenCV's, lower case: "jet", "viridis", "turbo", ...).
const std::map<std::string, int>& colormaps_by_name();

constexpr double kOutsideCropBrightness = 0.35;

struct OverlayStyle {
  double alpha = 0.5;               // weight of the heat map in the blend, 0..1
  int colormap = cv::COLORMAP_JET;  // a value of colormaps_by_name()
};

// `rgb`: the original image, CV_8UC3 in RGB order, the size of `map.values`. Returns CV_8UC3 RGB.
cv::Mat render_overlay(const cv::Mat& rgb, const RelevanceMap& map, const OverlayStyle& style);

}  // namespace clipxai
