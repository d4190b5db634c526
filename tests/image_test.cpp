// Image decoding, Pillow-exact resizing and CLIP preprocessing, checked against the goldens that
// scripts/make_image_goldens.py wrote with Pillow (tests/data/image/manifest.json lists them).
#include "clipxai/image.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "clipxai/error.h"

namespace clipxai {
namespace {

const std::string kDataDir = std::string(CLIPXAI_TEST_DATA) + "/image/";

const nlohmann::json& manifest() {
  static const nlohmann::json parsed = [] {
    std::ifstream file(kDataDir + "manifest.json");
    return nlohmann::json::parse(file);
  }();
  return parsed;
}

// Reads a golden PNG with OpenCV directly, independent of the code under test.
cv::Mat read_expected_rgb(const std::string& name) {
  const cv::Mat bgr = cv::imread(kDataDir + name, cv::IMREAD_COLOR);
  EXPECT_FALSE(bgr.empty()) << name;
  cv::Mat rgb;
  if (!bgr.empty()) cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

double max_abs_diff(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_INF); }

torch::Tensor read_float32(const std::string& name, int resolution) {
  std::ifstream file(kDataDir + name, std::ios::binary);
  torch::Tensor values = torch::empty({3, resolution, resolution}, torch::kFloat32);
  file.read(reinterpret_cast<char*>(values.data_ptr<float>()),
            static_cast<std::streamsize>(values.numel() * sizeof(float)));
  EXPECT_TRUE(file) << name << " is shorter than " << values.numel() << " floats";
  return values;
}

// Exact even for JPEG: OpenCV and Pillow decode it with the same libjpeg-turbo.
TEST(DecodeTest, EveryFormatDecodesToUprightRgb) {
  ASSERT_FALSE(manifest()["decode"].empty());
  for (const auto& entry : manifest()["decode"]) {
    const std::string input = entry["input"];
    SCOPED_TRACE(input);
    const DecodedImage image = load_image(kDataDir + input);
    const cv::Mat expected = read_expected_rgb(entry["expected"]);
    EXPECT_EQ(image.path, kDataDir + input);
    ASSERT_EQ(image.rgb.type(), CV_8UC3);
    ASSERT_EQ(image.rgb.size(), expected.size());
    EXPECT_EQ(max_abs_diff(image.rgb, expected), 0);
  }
}

TEST(DecodeTest, DecodesFromMemory) {
  std::ifstream file(kDataDir + "rgb.png", std::ios::binary);
  const std::string bytes(std::istreambuf_iterator<char>(file), {});
  const DecodedImage image = decode_image(bytes, "in-memory.png");
  EXPECT_EQ(image.path, "in-memory.png");
  EXPECT_EQ(max_abs_diff(image.rgb, load_image(kDataDir + "rgb.png").rgb), 0);
}

struct BadInput {
  std::string path;
  std::string expected_message;
};

TEST(DecodeTest, UnusableFilesAreInputErrorsNamingTheFile) {
  const std::vector<BadInput> cases = {
      {kDataDir + "no_such_file.png", "does not exist"},
      {kDataDir, "is a directory"},
      {"/dev/zero", "is not a regular file"},
      {kDataDir + "empty.png", "is empty"},
      {kDataDir + "truncated.jpg", "is truncated"},
      {kDataDir + "truncated_tail.jpg", "is truncated"},
      {kDataDir + "truncated.png", "is truncated"},
      {kDataDir + "truncated_tail.png", "is truncated"},
      {kDataDir + "truncated.webp", "is truncated"},
      {kDataDir + "truncated.bmp", "is truncated"},
      {kDataDir + "truncated.tif", "is truncated"},  // its directory is at the end, cut off
      {kDataDir + "not_an_image.png", "is not an image"},
      {kDataDir + "garbage.jpg", "could not be decoded (JPEG): JPEG datastream contains no image"},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.path);
    try {
      load_image(bad.path);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::Input);
      EXPECT_NE(std::string(e.what()).find("'" + bad.path + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad.expected_message), std::string::npos) << e.what();
    }
  }
}

// OpenCV would try a dozen other decoders on bytes of no known signature, a valid netpbm image
// among them; none may see them.
TEST(DecodeTest, OnlyTheFiveFormatsReachADecoder) {
  using namespace std::string_literals;  // the bytes hold NULs
  for (const std::string& bytes :
       {"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n\x02\x02\x00\x01"s,
        "P6\n1 1\n255\n\x01\x02\x03"s, "\x76\x2f\x31\x01\x02\x00\x00\x00"s}) {
    try {
      decode_image(bytes, "odd.bin");
      ADD_FAILURE() << "decoded " << bytes;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()),
                "image file 'odd.bin' is not an image (expected JPEG, PNG, WebP, BMP or TIFF)");
    }
  }
}

std::string encoded(const std::string& extension, int width, int height) {
  cv::Mat bgr(height, width, CV_8UC3, cv::Scalar(10, 120, 230));
  std::vector<uint8_t> bytes;
  EXPECT_TRUE(cv::imencode(extension, bgr, bytes)) << extension;
  return {bytes.begin(), bytes.end()};
}

TEST(DecodeTest, ReadsTheSizeFromEveryFormatsHeader) {
  for (const char* extension : {".png", ".jpg", ".webp", ".bmp", ".tif"}) {
    SCOPED_TRACE(extension);
    const auto size = header_dimensions(encoded(extension, 37, 23));
    ASSERT_TRUE(size.has_value());
    EXPECT_EQ(*size, (std::pair<int64_t, int64_t>{37, 23}));
  }
  EXPECT_FALSE(header_dimensions("not an image at all").has_value());
}

// Headers that claim a huge image over a tiny file: refused from the header, before decoding
// (which would need gigabytes).
TEST(DecodeTest, RefusesImagesOverThePixelLimitBeforeDecoding) {
  std::string png_bomb = encoded(".png", 4, 4);
  for (size_t at : {16, 20}) {  // IHDR width, height: 100000 each, big-endian
    png_bomb.replace(at, 4, std::string("\x00\x01\x86\xA0", 4));
  }
  std::string jpeg_bomb = encoded(".jpg", 4, 4);
  const size_t frame = jpeg_bomb.find("\xFF\xC0");
  ASSERT_NE(frame, std::string::npos);
  for (size_t at : {frame + 5, frame + 7}) jpeg_bomb.replace(at, 2, "\x75\x30");  // 30000
  struct Case {
    std::string name, bytes;
    int64_t max_pixels;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"png bomb", png_bomb, kDefaultMaxPixels,
       "is 100000x100000 pixels, over the limit of 250000000"},
      {"jpeg bomb", jpeg_bomb, kDefaultMaxPixels, "is 30000x30000 pixels"},
      {"a small limit", encoded(".webp", 37, 23), 37 * 23 - 1, "is 37x23 pixels"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    try {
      decode_image(c.bytes, c.name, c.max_pixels);
      ADD_FAILURE() << "decoded";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::Input);
      EXPECT_NE(std::string(e.what()).find("'" + c.name + "' " + c.message), std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(decode_image(encoded(".webp", 37, 23), "at the limit", 37 * 23).width(), 37);
}

TEST(ResizeTest, BitExactWithPillowBicubic) {
  ASSERT_FALSE(manifest()["resize"].empty());
  for (const auto& entry : manifest()["resize"]) {
    const int width = entry["width"];
    const int height = entry["height"];
    SCOPED_TRACE(std::to_string(width) + "x" + std::to_string(height));
    const cv::Mat source = read_expected_rgb(entry["input"]);
    const cv::Mat expected = read_expected_rgb(entry["expected"]);
    const cv::Mat resized = resize_bicubic(source, width, height);
    ASSERT_EQ(resized.size(), expected.size());
    EXPECT_EQ(max_abs_diff(resized, expected), 0);
  }
}

TEST(ResizeTest, InvalidArgumentsAreInternalErrors) {
  const cv::Mat rgb(4, 5, CV_8UC3, cv::Scalar(1, 2, 3));
  const std::vector<std::pair<cv::Mat, cv::Size>> cases = {
      {rgb, {0, 3}},
      {rgb, {3, -1}},
      {cv::Mat(), {3, 3}},
      {cv::Mat(4, 5, CV_8UC1), {3, 3}},
  };
  for (const auto& [image, size] : cases) {
    SCOPED_TRACE(std::to_string(size.width) + "x" + std::to_string(size.height));
    try {
      resize_bicubic(image, size.width, size.height);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::Internal);
    }
  }
}

TEST(PreprocessTest, MatchesClipPipelineAndLetterbox) {
  ASSERT_FALSE(manifest()["preprocess"].empty());
  for (const auto& entry : manifest()["preprocess"]) {
    const std::string expected_name = entry["expected"];
    SCOPED_TRACE(expected_name);
    PreprocessSpec spec;
    spec.resolution = entry["resolution"];
    const CropMode mode = entry["mode"] == "center" ? CropMode::Center : CropMode::Pad;
    const PreprocessedImage out =
        preprocess(load_image(kDataDir + entry["input"].get<std::string>()), spec, mode);
    ASSERT_EQ(out.pixels.sizes(), torch::IntArrayRef({3, spec.resolution, spec.resolution}));
    EXPECT_EQ(out.pixels.dtype(), torch::kFloat32);
    const torch::Tensor expected = read_float32(expected_name, spec.resolution);
    EXPECT_LE((out.pixels - expected).abs().max().item<float>(), 1e-6f);
    const std::vector<double> crop = entry["crop"];
    EXPECT_DOUBLE_EQ(out.crop.x, crop[0]);
    EXPECT_DOUBLE_EQ(out.crop.y, crop[1]);
    EXPECT_DOUBLE_EQ(out.crop.width, crop[2]);
    EXPECT_DOUBLE_EQ(out.crop.height, crop[3]);
  }
}

// A 1x5000 strip: Resize(224) makes it 224x1120000, of which only the centre crop is computed.
struct StripCase {
  CropMode mode;
  CropRegion crop;
  int image_column;  // the one canvas column the strip covers; -1: all of them
};

TEST(PreprocessTest, ExtremeAspectRatio) {
  const cv::Vec3b colour(200, 30, 90);
  const DecodedImage strip{"strip", cv::Mat(5000, 1, CV_8UC3, colour)};
  const PreprocessSpec spec;
  // Center: crop top = round((1120000 - 224) / 2) = 559888 rows of 5000/1120000 each.
  // Pad: the strip becomes one column at (224 - 1) / 2 on a 224-wide canvas of 1-pixel columns.
  const std::vector<StripCase> cases = {
      {CropMode::Center, {0, 2499.5, 1, 1}, -1},
      {CropMode::Pad, {-111, 0, 224, 5000}, 111},
  };
  for (const auto& strip_case : cases) {
    SCOPED_TRACE(strip_case.image_column);
    const PreprocessedImage out = preprocess(strip, spec, strip_case.mode);
    EXPECT_DOUBLE_EQ(out.crop.x, strip_case.crop.x);
    EXPECT_DOUBLE_EQ(out.crop.y, strip_case.crop.y);
    EXPECT_DOUBLE_EQ(out.crop.width, strip_case.crop.width);
    EXPECT_DOUBLE_EQ(out.crop.height, strip_case.crop.height);
    for (int c = 0; c < 3; ++c) {
      const float normalised = (colour[c] / 255.0f - spec.mean[c]) / spec.std[c];
      const torch::Tensor channel = out.pixels[c];
      if (strip_case.image_column < 0) {
        EXPECT_TRUE(channel.eq(normalised).all().item<bool>());
      } else {
        const torch::Tensor column = channel.select(1, strip_case.image_column);
        EXPECT_TRUE(column.eq(normalised).all().item<bool>());
        EXPECT_EQ(channel.ne(0).sum().item<int64_t>(), spec.resolution);
      }
    }
  }
}

}  // namespace
}  // namespace clipxai
