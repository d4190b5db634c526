// Image decoding and CLIP preprocessing.
//
// Decoding (OpenCV): JPEG, PNG (8/16-bit, grey, alpha), WebP, BMP, TIFF; EXIF orientation
// applied; result is 8-bit RGB. Alpha is dropped and 16-bit samples scaled to 8 bits, as
// PIL's convert("RGB") in CLIP's own preprocessing does.
//
// Preprocessing, as CLIP's torchvision pipeline: resize the short side to the model resolution
// with PIL's antialiased bicubic resampling (reproduced exactly, see resize_bicubic), centre crop
// as torchvision's CenterCrop, scale to [0,1], normalise with the model's mean/std.
// CropMode::Pad instead letterboxes the whole image into the square (long side resized to the
// resolution, borders filled with the mean colour, i.e. zero after normalisation).
#pragma once

#include <array>
#include <string>

#include <opencv2/core.hpp>
#include <torch/types.h>

namespace clipxai {

struct DecodedImage {
  std::string path;
  cv::Mat rgb;  // CV_8UC3, RGB order, EXIF orientation applied
  int width() const { return rgb.cols; }
  int height() const { return rgb.rows; }
};

// Throws Error(Input) naming the file when it is missing, empty, truncated or not an image.
DecodedImage load_image(const std::string& path);
// Decodes from memory; `name` is used in messages.
DecodedImage decode_image(const std::string& bytes, const std::string& name);

enum class CropMode { Center, Pad };

// The square the model saw, in the original image's pixel coordinates. For Center it lies inside
// the image; for Pad it contains the whole image and reaches beyond it.
struct CropRegion {
  double x = 0, y = 0, width = 0, height = 0;
};

struct PreprocessSpec {
  int resolution = 224;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

struct PreprocessedImage {
  torch::Tensor pixels;  // [3, resolution, resolution], float32, normalised
  CropRegion crop;
};

PreprocessedImage preprocess(const DecodedImage& image, const PreprocessSpec& spec, CropMode mode);

// PIL's Image.resize(size, BICUBIC) on 8-bit RGB, bit-exact: separable convolution with the
// bicubic kernel (a = -0.5) widened by the scale factor when downsampling, horizontal pass then
// vertical, fixed-point coefficients and 8-bit rounding between passes, as Pillow does.
cv::Mat resize_bicubic(const cv::Mat& rgb, int out_width, int out_height);

}  // namespace clipxai
