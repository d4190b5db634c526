// Image decoding and CLIP preprocessing.
//
// Decoding: JPEG, PNG, WebP, BMP and TIFF, told apart by their signatures (not the file name);
// other bytes are refused before any decoder sees them. JPEG and PNG go through libjpeg and
// libpng (image_decoders.h: OpenCV's pixels, without the libraries' messages on standard error),
// the others through OpenCV 4.6's imdecode.
// The result is always 8-bit RGB, turned upright by the EXIF orientation tag (JPEG, PNG, TIFF
// and WebP). Grey images are replicated to three channels, palettes expanded, 16-bit samples
// reduced to their high byte, and alpha dropped — except in TIFF, where libtiff premultiplies
// unassociated alpha, so transparent TIFF pixels come out composited on black.
// Truncation is reported rather than decoded into a partly grey image: JPEG without an
// end-of-image marker after its scan or with scan data that ends early or is damaged (libjpeg's
// warnings), PNG without IEND, TIFF whose strips or tiles lie past its end, WebP/BMP shorter than
// their header says.
//
// Preprocessing (CropMode::Center) is CLIP's torchvision pipeline, reproduced exactly:
//   Resize(n)      short side -> n, long side -> int(n * long / short), Pillow's BICUBIC
//                  (see resize_bicubic);
//   CenterCrop(n)  offsets int(round(margin / 2.0)) with Python's round (halves to even);
//   ToTensor, Normalize  x / 255 then (x - mean) / std, in float32.
// For an 8-bit RGB file the pixels equal those of CLIP's Python preprocess (bit for bit in the
// tests). They differ where PIL itself deviates: Image.open ignores EXIF orientation; PIL
// resizes RGBA premultiplied, palette images with NEAREST, and clips 16-bit grey to 255.
// CropMode::Pad letterboxes the whole image instead: the long side is resized to n, the short side
// to max(1, int(n * short / long + 0.5)) (same bicubic), placed at floor((n - size) / 2) on each
// axis of an n x n canvas of the mean colour (exactly zero after normalisation).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <torch/types.h>
#include <opencv2/core.hpp>

namespace clipxai {

struct DecodedImage {
  std::string path;
  cv::Mat rgb;  // CV_8UC3, RGB order, EXIF orientation applied
  int width() const { return rgb.cols; }
  int height() const { return rgb.rows; }
};

// The default bound on an image's pixels (width x height), well above any camera's (phones take
// 200 MP), far below what would exhaust memory: decoding needs ~6 bytes per pixel.
inline constexpr int64_t kDefaultMaxPixels = 250'000'000;

// Throws Error(Input) naming the file when it is missing, not a regular file (a directory, FIFO
// or device: never read, so a FIFO cannot hang the caller), unreadable, empty, truncated, larger
// than `max_pixels` or not a decodable image.
DecodedImage load_image(const std::string& path, int64_t max_pixels = kDefaultMaxPixels);
// Decodes an encoded image held in memory; `name` is used in messages and as the result's path.
// The size of a JPEG, PNG, WebP, BMP or TIFF is read from its header and checked against
// `max_pixels` before anything is decoded, so a decompression bomb costs nothing (a header too
// malformed to tell leaves the bound to the decoder: OpenCV's 2^30 pixels, libpng's and libjpeg's
// own checks).
DecodedImage decode_image(const std::string& bytes, const std::string& name,
                          int64_t max_pixels = kDefaultMaxPixels);

// The format of an encoded image by its signature: "JPEG", "PNG", "WebP", "BMP" or "TIFF"; nothing
// for other bytes, which decode_image refuses.
std::optional<std::string> image_format(const std::string& bytes);

// The width and height an image file's header states (JPEG, PNG, WebP, BMP, TIFF), or nothing
// for other formats and headers too short or malformed to tell.
std::optional<std::pair<int64_t, int64_t>> header_dimensions(const std::string& bytes);

enum class CropMode { Center, Pad };
std::string to_string(CropMode mode);  // "center", "pad"

// The square the model saw, in the decoded (upright) image's pixel coordinates, where pixel (i, j)
// covers [i, i + 1) x [j, j + 1). Each axis maps linearly: model pixel p covers original
// [x + p * width / n, x + (p + 1) * width / n). For Center it lies inside the image; for Pad it
// contains the whole image and reaches beyond it on the short axis (x or y negative). Not exactly
// square when rounding the resized size made the two axes' scales differ.
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

// Center mode computes only the cropped part of the resized image, so an extreme aspect ratio
// builds no huge intermediate image. Throws Error(Internal) for an empty image or a resolution
// below 1.
PreprocessedImage preprocess(const DecodedImage& image, const PreprocessSpec& spec, CropMode mode);

// Pillow 9.4's Image.resize((out_width, out_height), BICUBIC) on 8-bit RGB, bit-exact: separable
// convolution with the bicubic kernel (a = -0.5) widened by the scale factor when downsampling,
// weights normalised then held in 22-bit fixed point, horizontal pass then vertical with 8-bit
// rounding and clipping in between; an axis that keeps its size is not resampled. `rgb` must be
// CV_8UC3 (channel order does not matter) and the size positive, else Error(Internal).
cv::Mat resize_bicubic(const cv::Mat& rgb, int out_width, int out_height);

}  // namespace clipxai
