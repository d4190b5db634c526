// Saved runs as `clipxai check` and `merge` read them: a JSON document (first byte even) or a
// results.jsonl log (odd), compared with itself as check would.
#include "clipxai/check.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clipxai;
  if (size == 0) return 0;
  const std::string path = fuzz::scratch_file(data[0] % 2 == 0 ? "run.json" : "results.jsonl",
                                              fuzz::bytes_of(data + 1, size - 1));
  fuzz::expect_clean_outcome([&] {
    const SavedRun run = load_run(path);
    compare_runs(run, run, CheckTolerances{});
  });
  return 0;
}
