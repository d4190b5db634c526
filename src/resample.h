// Internal: the windowed form of resize_bicubic that preprocessing uses to avoid resizing pixels
// the centre crop discards (a 100:1 panorama would otherwise become a 22400x224 intermediate).
#pragma once

#include <opencv2/core.hpp>

namespace clipxai {

// The `window` (in output coordinates) of resize_bicubic(rgb, out_size.width, out_size.height),
// computed without the pixels outside it; identical to resizing fully and then cropping.
cv::Mat resize_bicubic_window(const cv::Mat& rgb, cv::Size out_size, cv::Rect window);

}  // namespace clipxai
