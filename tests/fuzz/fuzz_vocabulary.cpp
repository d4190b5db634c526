// Vocabulary files: OpenAI's gzip'd merge list (first byte even) or transformers' vocab.json and
// merges.txt (first byte odd, the two split at the first NUL), then a tokenisation with them.
#include "clipxai/tokenizer.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clipxai;
  if (size == 0) return 0;
  const std::string bytes = fuzz::bytes_of(data + 1, size - 1);
  VocabularyFiles files{"fuzz", "", "", ""};
  if (data[0] % 2 == 0) {
    files.gzip_merges = bytes;
  } else {
    const size_t split = bytes.find('\0');
    files.vocab_json = bytes.substr(0, split);
    files.merges_txt = split == std::string::npos ? "" : bytes.substr(split + 1);
  }
  // Vocabulary sizes from 256 + 2 tokens (no merges) upwards, as the first byte chooses.
  const int vocab_size = 258 + data[0] / 2;
  fuzz::expect_clean_outcome([&] {
    const Tokenizer tokenizer(files, vocab_size);
    tokenizer.tokenize("a photo of a dog, \xc3\xa9t\xc3\xa9 2024!", 16);
  });
  return 0;
}
