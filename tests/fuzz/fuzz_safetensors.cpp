// Safetensors files: the header length, its JSON, dtypes, shapes and offsets, then the tensors.
#include "../../src/tensor_file.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clipxai;
  const std::string path = fuzz::scratch_file("model.safetensors", fuzz::bytes_of(data, size));
  fuzz::expect_clean_outcome([&] { read_tensor_file(path); });
  return 0;
}
