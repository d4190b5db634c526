// `clipxai eval` manifests: JSON, then the manifest's shape and its paths' containment.
#include "clipxai/eval.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clipxai;
  fuzz::expect_clean_outcome(
      [&] { parse_manifest(fuzz::bytes_of(data, size), "set/manifest.json"); });
  return 0;
}
