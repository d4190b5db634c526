// JPEG and PNG decoding with libjpeg and libpng directly, for what OpenCV's decoders do not
// offer: OpenCV leaves both libraries' default handlers in place, which print their warnings and
// errors to standard error, and it ignores libjpeg's warnings about damaged scan data (a scan cut
// short before its end-of-image marker, a bad Huffman code), returning an image whose lower part
// is grey. Here nothing is printed, and damaged JPEG scan data fails the image.
//
// The pixels are OpenCV 4.6's for IMREAD_COLOR, in RGB order: the same libraries and settings
// (libjpeg: islow DCT, fancy upsampling, grey replicated, CMYK converted as OpenCV does; libpng:
// 16-bit samples cut to their high byte, alpha and tRNS dropped, palettes and low bit depths
// expanded, grey replicated, interlacing undone).
#pragma once

#include <string>
#include <string_view>

#include <opencv2/core.hpp>

namespace clipxai {

struct DecodedPixels {
  cv::Mat rgb;          // CV_8UC3, as stored (before the EXIF orientation); empty on failure
  std::string problem;  // the library's message when rgb is empty
  std::string exif;     // the EXIF block (JPEG's APP1 "Exif" segment, PNG's eXIf), or empty
};

DecodedPixels decode_jpeg(std::string_view bytes);
DecodedPixels decode_png(std::string_view bytes);

}  // namespace clipxai
