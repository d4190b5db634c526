// Any text through the bundled model's tokenizer: text clean-up (HTML entities, whitespace,
// Unicode), the pre-tokeniser's pattern, byte-level BPE and truncation.
#include "clipxai/model.h"
#include "clipxai/tokenizer.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clipxai;
  static const Tokenizer tokenizer = [] {
    const ClipModel model = ClipModel::load(CLIPXAI_SOURCE_DIR "/models/clipxai-emoji-vit.pt");
    return Tokenizer(*model.embedded_vocabulary(), model.config().vocab_size);
  }();
  fuzz::expect_clean_outcome([&] { tokenizer.tokenize(fuzz::bytes_of(data, size), 32); });
  return 0;
}
