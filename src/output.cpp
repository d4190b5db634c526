#include "clipxai/output.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include <libdeflate.h>

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include "clipxai/atomic_file.h"
#include "clipxai/error.h"
#include "deflate_literals.h"

namespace clipxai {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              ".npy output assumes a little-endian host");

constexpr size_t kSlugLimit = 64;

std::string slug(const std::string& text) {
  std::string out;
  bool pending_dash = false;
  for (unsigned char c : text) {
    if (c < 0x80 && std::isalnum(c)) {
      if (pending_dash && !out.empty()) out += '-';
      pending_dash = false;
      out += static_cast<char>(std::tolower(c));
    } else {
      pending_dash = true;
    }
  }
  out.resize(std::min(out.size(), kSlugLimit));
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "prompt" : out;
}

}  // namespace

std::string path_text(const std::string& path) {
  // The length of the valid UTF-8 character at `i`, or 0 (RFC 3629: no overlong forms, no
  // surrogates, nothing above U+10FFFF).
  const auto character_length = [&](size_t i) -> size_t {
    const auto at = [&](size_t k) { return static_cast<unsigned char>(path[k]); };
    const unsigned char lead = at(i);
    if (lead < 0x80) return 1;
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // bounds of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return 0;
    }
    if (i + length > path.size() || at(i + 1) < low || at(i + 1) > high) return 0;
    for (size_t k = 2; k < length; ++k) {
      if ((at(i + k) & 0xC0) != 0x80) return 0;
    }
    return length;
  };
  bool valid = true;
  for (size_t i = 0; i < path.size() && valid;) {
    const size_t length = character_length(i);
    valid = length > 0;
    i += length;
  }
  if (valid) return path;
  std::string text;
  for (size_t i = 0; i < path.size();) {
    const size_t length = character_length(i);
    if (length == 0) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(path[i]));
      text += escaped;
      ++i;
    } else if (path[i] == '\\') {
      text += "\\\\";
      ++i;
    } else {
      text.append(path, i, length);
      i += length;
    }
  }
  return text;
}

std::string json_text(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

void append_u32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>(value >> shift & 0xff);
}

// A PNG chunk: length, type, data, CRC-32 of type and data.
void append_chunk(std::string& out, const char* type, const void* data, size_t size) {
  append_u32(out, static_cast<uint32_t>(size));
  const size_t type_at = out.size();
  out.append(type, 4);
  out.append(static_cast<const char*>(data), size);
  append_u32(out, libdeflate_crc32(0, out.data() + type_at, size + 4));
}

}  // namespace

std::string encode_png(const cv::Mat& rgb) {
  if (rgb.type() != CV_8UC3 || rgb.empty()) {
    throw Error(ErrorCategory::Internal, "encode_png expects a non-empty 8-bit RGB picture");
  }
  // Every row goes through the Paeth filter (each byte less the left, upper or upper-left
  // neighbour, whichever is nearest their gradient) and then a Huffman code without string
  // matching (deflate_literals.h): overlays are photographs under a smooth colour map, where
  // filtering leaves small differences and long repeats are rare, so this encodes several times
  // faster than zlib or libdeflate at their fastest levels, in files no larger (README,
  // Performance). The bytes depend on nothing but the pixels.
  constexpr int kChannels = 3;
  const size_t row_bytes = static_cast<size_t>(rgb.cols) * kChannels;
  std::vector<unsigned char> filtered((row_bytes + 1) * static_cast<size_t>(rgb.rows));
  const std::vector<unsigned char> zero_row(row_bytes, 0);
  for (int y = 0; y < rgb.rows; ++y) {
    unsigned char* out = filtered.data() + (row_bytes + 1) * y;
    const unsigned char* row = rgb.ptr<unsigned char>(y);
    const unsigned char* above = y == 0 ? zero_row.data() : rgb.ptr<unsigned char>(y - 1);
    *out++ = 4;  // filter type Paeth; the first row's "above" and every row's left edge are zero
    for (size_t x = 0; x < kChannels; ++x) out[x] = static_cast<unsigned char>(row[x] - above[x]);
    for (size_t x = kChannels; x < row_bytes; ++x) {
      // In 16 bits and without a branch (`&`, not `&&`), so the compiler vectorises the loop.
      const int16_t left = row[x - kChannels], up = above[x], up_left = above[x - kChannels];
      const int16_t up_step = up - up_left, left_step = left - up_left,
                    both_steps = up_step + left_step;
      const int16_t to_left = up_step < 0 ? -up_step : up_step,
                    to_up = left_step < 0 ? -left_step : left_step,
                    to_up_left = both_steps < 0 ? -both_steps : both_steps;
      const int16_t predicted = (to_left <= to_up) & (to_left <= to_up_left) ? left
                                : to_up <= to_up_left                        ? up
                                                                             : up_left;
      out[x] = static_cast<unsigned char>(row[x] - predicted);
    }
  }
  const std::string deflated = zlib_compress_literals(filtered.data(), filtered.size());
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string header;
  append_u32(header, static_cast<uint32_t>(rgb.cols));
  append_u32(header, static_cast<uint32_t>(rgb.rows));
  header +=
      std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, filtered, progressive off
  append_chunk(png, "IHDR", header.data(), header.size());
  append_chunk(png, "IDAT", deflated.data(), deflated.size());
  append_chunk(png, "IEND", nullptr, 0);
  return png;
}

void write_png(const std::string& path, const cv::Mat& rgb) {
  write_file_atomically(path, encode_png(rgb));
}

std::string npy_bytes(const torch::Tensor& grid) {
  if (grid.dim() != 2) throw Error(ErrorCategory::Internal, ".npy output expects a 2-D map");
  const torch::Tensor values = grid.detach().to(torch::kCPU, torch::kFloat).contiguous();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(values.size(0)) + ", " + std::to_string(values.size(1)) +
                       "), }";
  constexpr size_t kPreamble = 10;  // magic (6), version (2), header length (2)
  constexpr size_t kAlignment = 64;
  const size_t unpadded = kPreamble + header.size() + 1;  // +1 for the closing newline
  header.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  header += '\n';

  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values.data_ptr<float>()),
               values.numel() * sizeof(float));
  return bytes;
}

void write_npy(const std::string& path, const torch::Tensor& grid) {
  write_file_atomically(path, npy_bytes(grid));
}

std::vector<std::string> unique_slugs(const std::vector<std::string>& prompts) {
  std::vector<std::string> slugs;
  std::set<std::string> used;
  for (const std::string& prompt : prompts) {
    const std::string base = slug(prompt);
    std::string candidate = base;
    for (int n = 2; used.count(candidate); ++n) candidate = base + "-" + std::to_string(n);
    used.insert(candidate);
    slugs.push_back(candidate);
  }
  return slugs;
}

}  // namespace clipxai
