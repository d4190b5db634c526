// Image bytes from anywhere: the header size check, decoding (libjpeg for JPEG, OpenCV for the
// rest) and CLIP's preprocessing of what decodes; and the PNG writer (the server sends overlays
// of uploaded pictures), whose file must decode to exactly the pixels it was given.
#include <opencv2/core.hpp>

#include "clipxai/image.h"
#include "clipxai/output.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clipxai;
  fuzz::expect_clean_outcome([&] {
    header_dimensions(fuzz::bytes_of(data, size));
    // Small limits keep each execution fast; the bound itself is what is being tested.
    const DecodedImage image = decode_image(fuzz::bytes_of(data, size), "fuzz", 1 << 18);
    PreprocessSpec spec;
    spec.resolution = 32;
    preprocess(image, spec, CropMode::Center);
    preprocess(image, spec, CropMode::Pad);
    const DecodedImage written = decode_image(encode_png(image.rgb), "fuzz png", 1 << 18);
    if (written.rgb.size() != image.rgb.size() ||
        cv::norm(written.rgb, image.rgb, cv::NORM_INF) != 0) {
      __builtin_trap();
    }
  });
  return 0;
}
