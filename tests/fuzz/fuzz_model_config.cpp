// The configuration files of the folder layouts, over a fixed valid set of weights: a Hugging
// Face folder's config.json and preprocessor_config.json (first byte even, the two split at the
// first NUL) or an open_clip folder's open_clip_config.json (odd).
#include <filesystem>

#include "clipxai/model.h"
#include "fuzz_common.h"

namespace fs = std::filesystem;

namespace {

// A copy of a test layout in this process's scratch folder, for its config files to be replaced.
fs::path scratch_layout(const std::string& layout) {
  const fs::path folder =
      fs::path("/tmp") / ("clipxai-fuzz-" + std::to_string(::getpid()) + "-" + layout);
  if (!fs::exists(folder)) {
    fs::copy(fs::path(CLIPXAI_SOURCE_DIR) / "tests/data/layouts" / layout, folder,
             fs::copy_options::recursive);
  }
  return folder;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clipxai;
  if (size == 0) return 0;
  const std::string bytes = fuzz::bytes_of(data + 1, size - 1);
  const bool hf = data[0] % 2 == 0;
  static const fs::path hf_folder = scratch_layout("hf");
  static const fs::path open_clip_folder = scratch_layout("open_clip");
  const fs::path folder = hf ? hf_folder : open_clip_folder;
  if (hf) {
    const size_t split = bytes.find('\0');
    std::ofstream(folder / "config.json", std::ios::trunc) << bytes.substr(0, split);
    std::ofstream(folder / "preprocessor_config.json", std::ios::trunc)
        << (split == std::string::npos ? "{}" : bytes.substr(split + 1));
  } else {
    std::ofstream(folder / "open_clip_config.json", std::ios::trunc) << bytes;
  }
  fuzz::expect_clean_outcome([&] { ClipModel::load(folder.string()); });
  return 0;
}
