// Image bytes from anywhere: the header size check, decoding (libjpeg for JPEG, OpenCV for the
// rest) and CLIP's preprocessing of what decodes.
#include "clipxai/image.h"
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
  });
  return 0;
}
