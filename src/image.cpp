#include "clipxai/image.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "clipxai/error.h"
#include "clipxai/input_file.h"
#include "image_decoders.h"
#include "resample.h"

namespace clipxai {
namespace {

enum class Format { Jpeg, Png, WebP, Bmp, Tiff, Other };

bool starts_with(std::string_view bytes, std::string_view magic) {
  return bytes.substr(0, magic.size()) == magic;
}

Format sniff_format(std::string_view bytes) {
  using namespace std::string_view_literals;
  if (starts_with(bytes, "\xFF\xD8\xFF"sv)) return Format::Jpeg;
  if (starts_with(bytes, "\x89PNG\r\n\x1A\n"sv)) return Format::Png;
  if (starts_with(bytes, "RIFF"sv) && bytes.size() >= 12 && bytes.substr(8, 4) == "WEBP"sv)
    return Format::WebP;
  if (starts_with(bytes, "BM"sv)) return Format::Bmp;
  if (starts_with(bytes, "II*\0"sv) || starts_with(bytes, "MM\0*"sv)) return Format::Tiff;
  return Format::Other;
}

const char* format_name(Format format) {
  switch (format) {
    case Format::Jpeg:
      return "JPEG";
    case Format::Png:
      return "PNG";
    case Format::WebP:
      return "WebP";
    case Format::Bmp:
      return "BMP";
    case Format::Tiff:
      return "TIFF";
    case Format::Other:
      break;
  }
  return "image";
}

uint32_t byte_at(std::string_view bytes, size_t pos) { return static_cast<uint8_t>(bytes[pos]); }

uint32_t big_endian(std::string_view bytes, size_t pos, int size) {
  uint32_t value = 0;
  for (int i = 0; i < size; ++i) value = value << 8 | byte_at(bytes, pos + i);
  return value;
}

uint32_t little_endian(std::string_view bytes, size_t pos, int size) {
  uint32_t value = 0;
  for (int i = size - 1; i >= 0; --i) value = value << 8 | byte_at(bytes, pos + i);
  return value;
}

// libjpeg pads a cut-off stream with grey and only warns. Walk the marker segments to the first
// start-of-scan; the scan data must then reach an end-of-image marker (0xFF is always followed by
// 0x00 or a restart marker inside scan data, so FF D9 cannot occur there by accident, and the
// segment walk skips EXIF thumbnails, which carry their own FF D9). Unrecognised structure is left
// to the decoder.
bool jpeg_is_truncated(std::string_view bytes) {
  size_t pos = 2;
  while (pos < bytes.size()) {
    if (byte_at(bytes, pos) != 0xFF) return false;
    while (pos < bytes.size() && byte_at(bytes, pos) == 0xFF) ++pos;  // fill bytes
    if (pos >= bytes.size()) return true;
    const uint32_t marker = byte_at(bytes, pos++);
    const bool standalone = marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7);
    if (marker == 0xD9) return false;
    if (standalone) continue;
    if (pos + 2 > bytes.size()) return true;
    const size_t length = big_endian(bytes, pos, 2);
    if (marker == 0xDA) return bytes.find("\xFF\xD9", pos + length) == std::string_view::npos;
    pos += length;
  }
  return true;
}

// libpng reports a missing IDAT tail only as a warning to some callers; walk the chunks to IEND.
bool png_is_truncated(std::string_view bytes) {
  constexpr size_t kSignatureSize = 8;
  constexpr size_t kChunkOverhead = 12;  // length, type, CRC
  size_t pos = kSignatureSize;
  while (pos + 8 <= bytes.size()) {
    if (bytes.substr(pos + 4, 4) == "IEND") return false;
    pos += kChunkOverhead + big_endian(bytes, pos, 4);
  }
  return true;
}

// RIFF and BMP headers state the file size.
bool riff_is_truncated(std::string_view bytes) {
  constexpr size_t kRiffHeaderSize = 8;
  return bytes.size() < 12 || little_endian(bytes, 4, 4) + kRiffHeaderSize > bytes.size();
}

bool bmp_is_truncated(std::string_view bytes) {
  return bytes.size() < 14 || little_endian(bytes, 2, 4) > bytes.size();
}

std::optional<std::pair<int64_t, int64_t>> jpeg_dimensions(std::string_view bytes) {
  size_t pos = 2;
  while (pos + 4 <= bytes.size() && byte_at(bytes, pos) == 0xFF) {
    while (pos < bytes.size() && byte_at(bytes, pos) == 0xFF) ++pos;  // fill bytes
    if (pos + 3 > bytes.size()) break;
    const uint32_t marker = byte_at(bytes, pos++);
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;
    if (marker == 0xD9 || marker == 0xDA) break;  // end of image, or scan data before any frame
    const size_t length = big_endian(bytes, pos, 2);
    // Start-of-frame markers: C0-CF but DHT (C4), JPG (C8) and DAC (CC).
    const bool frame =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame && pos + 7 <= bytes.size()) {
      return std::pair<int64_t, int64_t>{big_endian(bytes, pos + 5, 2),
                                         big_endian(bytes, pos + 3, 2)};
    }
    if (length < 2) break;
    pos += length;
  }
  return std::nullopt;
}

// WebP's three bitstreams: lossy (VP8), lossless (VP8L) and extended (VP8X, the canvas size).
std::optional<std::pair<int64_t, int64_t>> webp_dimensions(std::string_view bytes) {
  if (bytes.size() < 30) return std::nullopt;
  const std::string_view chunk = bytes.substr(12, 4);
  if (chunk == "VP8X") {
    return std::pair<int64_t, int64_t>{little_endian(bytes, 24, 3) + 1,
                                       little_endian(bytes, 27, 3) + 1};
  }
  if (chunk == "VP8L" && byte_at(bytes, 20) == 0x2F) {
    const uint32_t bits = little_endian(bytes, 21, 4);
    return std::pair<int64_t, int64_t>{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (chunk == "VP8 ") {
    return std::pair<int64_t, int64_t>{little_endian(bytes, 26, 2) & 0x3FFF,
                                       little_endian(bytes, 28, 2) & 0x3FFF};
  }
  return std::nullopt;
}

std::optional<std::pair<int64_t, int64_t>> bmp_dimensions(std::string_view bytes) {
  if (bytes.size() < 26) return std::nullopt;
  if (little_endian(bytes, 14, 4) == 12) {  // BITMAPCOREHEADER: 16-bit sizes
    return std::pair<int64_t, int64_t>{little_endian(bytes, 18, 2), little_endian(bytes, 20, 2)};
  }
  const auto signed_size = [&](size_t pos) {
    return std::abs(static_cast<int64_t>(static_cast<int32_t>(little_endian(bytes, pos, 4))));
  };
  return std::pair<int64_t, int64_t>{signed_size(18), signed_size(22)};  // height < 0: top-down
}

// A TIFF file's byte order and its first image file directory's entries (classic TIFF, not
// BigTIFF): tag, type, count and where the 4-byte value field lies.
struct TiffDirectory {
  struct Entry {
    uint32_t tag, type, count;
    size_t value_at;
  };
  bool little = true;
  bool cut = false;  // the directory, or one of its entries, lies past the end of the file
  std::vector<Entry> entries;

  uint32_t read(std::string_view bytes, size_t pos, int size) const {
    return little ? little_endian(bytes, pos, size) : big_endian(bytes, pos, size);
  }
};

TiffDirectory tiff_directory(std::string_view bytes) {
  constexpr size_t kEntrySize = 12;
  TiffDirectory directory;
  directory.little = bytes[0] == 'I';
  directory.cut = true;
  if (bytes.size() < 8) return directory;
  const size_t start = directory.read(bytes, 4, 4);
  if (start > bytes.size() - 2) return directory;
  const size_t count = directory.read(bytes, start, 2);
  directory.cut = start + 2 + count * kEntrySize > bytes.size();
  for (size_t i = 0; i < count && start + 2 + (i + 1) * kEntrySize <= bytes.size(); ++i) {
    const size_t entry = start + 2 + i * kEntrySize;
    directory.entries.push_back({directory.read(bytes, entry, 2),
                                 directory.read(bytes, entry + 2, 2),
                                 directory.read(bytes, entry + 4, 4), entry + 8});
  }
  return directory;
}

// ImageWidth (256) and ImageLength (257), as SHORT or LONG.
std::optional<std::pair<int64_t, int64_t>> tiff_dimensions(std::string_view bytes) {
  const TiffDirectory directory = tiff_directory(bytes);
  int64_t width = -1, height = -1;
  for (const TiffDirectory::Entry& entry : directory.entries) {
    if ((entry.tag != 256 && entry.tag != 257) || (entry.type != 3 && entry.type != 4)) continue;
    (entry.tag == 256 ? width : height) =
        directory.read(bytes, entry.value_at, entry.type == 3 ? 2 : 4);
  }
  if (width < 0 || height < 0) return std::nullopt;
  return std::pair<int64_t, int64_t>{width, height};
}

// Whether the first image's directory, or one of its strips or tiles, lies past the end of the
// file: libtiff then fails inside OpenCV, which prints its own lines. StripOffsets (273) with
// StripByteCounts (279), or TileOffsets (324) with TileByteCounts (325), as SHORT or LONG arrays.
bool tiff_is_truncated(std::string_view bytes) {
  const TiffDirectory directory = tiff_directory(bytes);
  if (directory.cut) return true;
  const auto values = [&](uint32_t tag) {
    std::vector<uint64_t> out;
    for (const TiffDirectory::Entry& entry : directory.entries) {
      if (entry.tag != tag || (entry.type != 3 && entry.type != 4)) continue;
      const int size = entry.type == 3 ? 2 : 4;
      const uint64_t total = uint64_t{entry.count} * size;
      const size_t at = total <= 4 ? entry.value_at : directory.read(bytes, entry.value_at, 4);
      if (at > bytes.size() || total > bytes.size() - at) return std::vector<uint64_t>{};
      for (uint32_t k = 0; k < entry.count; ++k) {
        out.push_back(directory.read(bytes, at + k * size, size));
      }
    }
    return out;
  };
  for (const auto& [offsets_tag, counts_tag] :
       {std::pair<uint32_t, uint32_t>{273, 279}, {324, 325}}) {
    const std::vector<uint64_t> offsets = values(offsets_tag);
    const std::vector<uint64_t> counts = values(counts_tag);
    for (size_t k = 0; k < std::min(offsets.size(), counts.size()); ++k) {
      if (offsets[k] > bytes.size() || counts[k] > bytes.size() - offsets[k]) return true;
    }
  }
  return false;
}

bool is_truncated(Format format, std::string_view bytes) {
  switch (format) {
    case Format::Jpeg:
      return jpeg_is_truncated(bytes);
    case Format::Png:
      return png_is_truncated(bytes);
    case Format::WebP:
      return riff_is_truncated(bytes);
    case Format::Bmp:
      return bmp_is_truncated(bytes);
    case Format::Tiff:
      return tiff_is_truncated(bytes);
    case Format::Other:
      break;
  }
  return false;
}

std::optional<std::pair<int64_t, int64_t>> dimensions(Format format, std::string_view bytes) {
  switch (format) {
    case Format::Jpeg:
      return jpeg_dimensions(bytes);
    case Format::Png:
      if (bytes.size() < 24 || bytes.substr(12, 4) != "IHDR") return std::nullopt;
      return std::pair<int64_t, int64_t>{big_endian(bytes, 16, 4), big_endian(bytes, 20, 4)};
    case Format::WebP:
      return webp_dimensions(bytes);
    case Format::Bmp:
      return bmp_dimensions(bytes);
    case Format::Tiff:
      return tiff_dimensions(bytes);
    case Format::Other:
      break;
  }
  return std::nullopt;
}

// The payload of a WebP file's EXIF chunk, or nothing.
std::string_view webp_exif(std::string_view bytes) {
  constexpr size_t kChunkHeaderSize = 8;  // fourcc, little-endian size
  size_t pos = 12;                        // after "RIFF", size, "WEBP"
  while (pos + kChunkHeaderSize <= bytes.size()) {
    const size_t size = little_endian(bytes, pos + 4, 4);
    if (bytes.substr(pos, 4) == "EXIF") return bytes.substr(pos + kChunkHeaderSize, size);
    pos += kChunkHeaderSize + size + size % 2;
  }
  return {};
}

// The orientation tag (1-8) of a TIFF-structured EXIF block; 1 (upright) when absent or invalid.
int exif_orientation(std::string_view exif) {
  using namespace std::string_view_literals;
  constexpr uint32_t kOrientationTag = 0x0112;
  constexpr size_t kEntrySize = 12;  // tag, type, count, value
  if (starts_with(exif, "Exif\0\0"sv)) exif.remove_prefix(6);
  const bool little = starts_with(exif, "II"sv);
  if (exif.size() < 8 || (!little && !starts_with(exif, "MM"sv))) return 1;
  const auto read = [&](size_t pos, int size) {
    return little ? little_endian(exif, pos, size) : big_endian(exif, pos, size);
  };
  const size_t directory = read(4, 4);
  if (directory + 2 > exif.size()) return 1;
  const size_t entries = read(directory, 2);
  for (size_t entry = directory + 2;
       entry + kEntrySize <= exif.size() && entry < directory + 2 + entries * kEntrySize;
       entry += kEntrySize) {
    if (read(entry, 2) != kOrientationTag) continue;
    const int orientation = static_cast<int>(read(entry + 8, 2));
    return orientation >= 1 && orientation <= 8 ? orientation : 1;
  }
  return 1;
}

// Turns an image stored with EXIF orientation `orientation` upright, as OpenCV does for the
// formats whose EXIF it reads.
void apply_exif_orientation(int orientation, cv::Mat& image) {
  if (orientation >= 5) cv::transpose(image, image);
  switch (orientation) {
    case 2:
    case 6:
      cv::flip(image, image, 1);
      break;
    case 3:
    case 7:
      cv::flip(image, image, -1);
      break;
    case 4:
    case 8:
      cv::flip(image, image, 0);
      break;
    default:
      break;
  }
}

// torchvision's CenterCrop offset int(round(margin / 2.0)): Python rounds halves to even.
int half_rounded_to_even(int margin) {
  const int half = margin / 2;
  return margin % 2 == 0 || half % 2 == 0 ? half : half + 1;
}

// ToTensor then Normalize, in float32 and in torchvision's operation order.
void write_normalised(const cv::Mat& rgb, const PreprocessSpec& spec, int top, int left,
                      torch::Tensor& pixels) {
  auto out = pixels.accessor<float, 3>();
  for (int y = 0; y < rgb.rows; ++y) {
    const uint8_t* row = rgb.ptr<uint8_t>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      for (int c = 0; c < 3; ++c) {
        const float value = static_cast<float>(row[3 * x + c]) / 255.0f;
        out[c][top + y][left + x] = (value - spec.mean[c]) / spec.std[c];
      }
    }
  }
}

}  // namespace

std::optional<std::pair<int64_t, int64_t>> header_dimensions(const std::string& bytes) {
  return dimensions(sniff_format(bytes), bytes);
}

std::optional<std::string> image_format(const std::string& bytes) {
  const Format format = sniff_format(bytes);
  if (format == Format::Other) return std::nullopt;
  return format_name(format);
}

DecodedImage decode_image(const std::string& bytes, const std::string& name, int64_t max_pixels) {
  if (bytes.empty()) throw input_error("image file '" + name + "' is empty");
  const Format format = sniff_format(bytes);
  if (const auto size = dimensions(format, bytes)) {
    const auto [width, height] = *size;
    if (static_cast<double>(width) * static_cast<double>(height) >
        static_cast<double>(max_pixels)) {
      throw input_error("image file '" + name + "' is " + std::to_string(width) + "x" +
                        std::to_string(height) + " pixels, over the limit of " +
                        std::to_string(max_pixels) + " (--max-pixels)");
    }
  }
  if (is_truncated(format, bytes)) {
    throw input_error("image file '" + name + "' is truncated: its " + format_name(format) +
                      " data ends early");
  }
  // Only the five formats reach a decoder: OpenCV would try a dozen more on unknown bytes
  // (OpenEXR, Radiance HDR, JPEG 2000...), spilling those without a memory reader to a file in
  // /tmp and printing their complaints.
  if (format == Format::Other) {
    throw input_error("image file '" + name +
                      "' is not an image (expected JPEG, PNG, WebP, BMP or TIFF)");
  }
  DecodedImage image{name, {}};
  if (format == Format::Jpeg || format == Format::Png) {
    DecodedPixels decoded = format == Format::Jpeg ? decode_jpeg(bytes) : decode_png(bytes);
    if (decoded.rgb.empty()) {
      throw input_error("image file '" + name + "' could not be decoded (" + format_name(format) +
                        "): " + decoded.problem);
    }
    image.rgb = std::move(decoded.rgb);
    apply_exif_orientation(exif_orientation(decoded.exif), image.rgb);
    return image;
  }
  const std::vector<uint8_t> buffer(bytes.begin(), bytes.end());
  cv::Mat bgr;
  try {
    // IMREAD_COLOR converts grey, alpha, palette and 16-bit images to 8-bit BGR and applies the
    // EXIF orientation of TIFF files; OpenCV 4.6 ignores WebP's.
    bgr = cv::imdecode(buffer, cv::IMREAD_COLOR);
    if (format == Format::WebP && !bgr.empty()) {
      apply_exif_orientation(exif_orientation(webp_exif(bytes)), bgr);
    }
  } catch (const cv::Exception& e) {
    throw input_error("image file '" + name + "' could not be decoded (" + format_name(format) +
                      "): " + e.err);
  }
  if (bgr.empty()) {
    throw input_error("image file '" + name + "' is not a valid " + format_name(format) + " image");
  }
  cv::cvtColor(bgr, image.rgb, cv::COLOR_BGR2RGB);
  return image;
}

DecodedImage load_image(const std::string& path, int64_t max_pixels) {
  if (const auto problem = input_file_problem(path)) {
    throw input_error("image file '" + path + "' " + *problem + ", expected an image file");
  }
  return decode_image(read_input_file(path, "image file"), path, max_pixels);
}

PreprocessedImage preprocess(const DecodedImage& image, const PreprocessSpec& spec, CropMode mode) {
  const int n = spec.resolution;
  const int width = image.width();
  const int height = image.height();
  if (n < 1 || image.rgb.empty() || image.rgb.type() != CV_8UC3) {
    throw Error(ErrorCategory::Internal,
                "preprocess: expected a decoded RGB image and a positive resolution");
  }
  cv::Size resized;
  cv::Rect window;  // the part of the resized image the model sees
  int top = 0;      // where that part goes on the model's canvas
  int left = 0;
  if (mode == CropMode::Center) {
    // torchvision Resize(n): short side to n, long side int(n * long / short).
    resized = width <= height
                  ? cv::Size(n, static_cast<int>(static_cast<double>(n) * height / width))
                  : cv::Size(static_cast<int>(static_cast<double>(n) * width / height), n);
    window = cv::Rect(half_rounded_to_even(resized.width - n),
                      half_rounded_to_even(resized.height - n), n, n);
  } else {
    const auto scaled_short = [n](int short_side, int long_side) {
      return std::max(1, static_cast<int>(static_cast<double>(n) * short_side / long_side + 0.5));
    };
    resized = width >= height ? cv::Size(n, scaled_short(height, width))
                              : cv::Size(scaled_short(width, height), n);
    window = cv::Rect({}, resized);
    left = (n - resized.width) / 2;
    top = (n - resized.height) / 2;
  }

  PreprocessedImage out;
  out.pixels = torch::zeros({3, n, n}, torch::kFloat32);
  write_normalised(resize_bicubic_window(image.rgb, resized, window), spec, top, left, out.pixels);

  // Resampling maps each axis linearly (output pixel i covers input [i, i + 1) * in / out).
  const double scale_x = static_cast<double>(width) / resized.width;
  const double scale_y = static_cast<double>(height) / resized.height;
  out.crop = {(window.x - left) * scale_x, (window.y - top) * scale_y, n * scale_x, n * scale_y};
  return out;
}

std::string to_string(CropMode mode) { return mode == CropMode::Pad ? "pad" : "center"; }

}  // namespace clipxai
