// CLIP's byte-level BPE tokenizer, giving exactly the token ids of OpenAI's reference
// (clip/simple_tokenizer.py + clip.tokenize).
//
// Text clean-up as the reference: ftfy's default fixes for well-formed text (HTML entities,
// C1 controls as Windows-1252, latin ligatures, fullwidth -> ASCII, straight quotes, terminal
// escapes and control characters removed, NFC), Python's html.unescape applied twice, whitespace
// collapsed, lower case; then the reference's pre-tokenising regex and BPE. Unicode classes,
// case mapping and normalisation come from ICU. Not ported: ftfy's mojibake repair
// (fix_encoding), which only changes text decoded with the wrong codec.
//
// Vocabulary, in either of the forms CLIP's vocabulary is published in (VocabularyFiles):
//   OpenAI's gzip'd merge list `bpe_simple_vocab_16e6.txt.gz` (a header line, then one "a b"
//   merge per line). Ids: 256 byte tokens, 256 byte+"</w>" tokens, one per merge used, then
//   <|startoftext|> and <|endoftext|> (EOT is the highest id). A model with vocabulary size V
//   uses the first V - 514 merges of the file.
//   Hugging Face's vocab.json ({"token": id}) and merges.txt ("#version" line, then merges), as
//   transformers' CLIPTokenizer reads them: ids from vocab.json (SOT and EOT included, whatever
//   their ids), at most 48894 merges, a token vocab.json lacks becomes <|endoftext|>. Made from
//   OpenAI's list they give the same ids.
//
// A Tokenizer is safe to use from several threads; copies share their cache of BPE results.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace clipxai {

// One text in a model's fixed-size context.
struct TokenizedText {
  std::string text;                 // the text as given
  std::vector<int64_t> ids;         // context_length slots: SOT, tokens, EOT, zero padding
  std::vector<std::string> tokens;  // readable form of the tokens between SOT and EOT
  int eot_index = 0;                // slot of EOT in `ids`
  bool truncated = false;           // the text did not fit; the last slot kept for EOT
};

// A vocabulary's files as read, before a Tokenizer is built from them: either `gzip_merges`, or
// `vocab_json` and `merges_txt`.
struct VocabularyFiles {
  std::string source;       // where they came from, for messages and `clipxai info`
  std::string gzip_merges;  // bpe_simple_vocab_16e6.txt.gz's bytes
  std::string vocab_json;   // vocab.json's text
  std::string merges_txt;   // merges.txt's text
};

// `path`: a .txt.gz merge list, a vocab.json with merges.txt beside it, or a folder holding
// vocab.json and merges.txt; `origin` says in messages where the path came from ("--vocab"), or
// is empty. Throws Error(Model) for a file that is not a regular file or cannot be read
// (input_file.h).
VocabularyFiles read_vocabulary_files(const std::string& path, const std::string& origin);

class Tokenizer {
 public:
  static constexpr int kOpenAIVocabSize = 49408;

  // `vocab_size`: the model's number of token embeddings. Throws Error(Model) when the files are
  // not a vocabulary of the forms above, have too few merges, or give ids past `vocab_size`.
  explicit Tokenizer(const VocabularyFiles& files, int vocab_size = kOpenAIVocabSize);

  // BPE ids of a text, without SOT/EOT, after clean-up. Throws Error(Input) on invalid UTF-8.
  std::vector<int64_t> encode(const std::string& text) const;

  // Fills a context of `context_length` (>= 2) slots; over-long text is truncated keeping EOT
  // last. Throws Error(Input) on invalid UTF-8.
  TokenizedText tokenize(const std::string& text, int context_length = 77) const;

  // The readable text of one token id ("girl</w>" -> "girl"); bytes that are not valid UTF-8 on
  // their own are shown as U+FFFD. Throws Error(Input) for an id outside the vocabulary.
  std::string token_text(int64_t id) const;

  // Words whose BPE result is kept for reuse. The cache is emptied when it reaches
  // kMaxCachedWords, so a server tokenising text from anyone stays within a bounded memory.
  static constexpr size_t kMaxCachedWords = 50'000;
  size_t cached_words() const;

  int64_t sot_id() const { return sot_id_; }
  int64_t eot_id() const { return eot_id_; }
  int vocab_size() const { return vocab_size_; }
  const std::string& source() const { return source_; }

 private:
  struct BpeCache;

  void read_openai_merges(const std::string& gzip_bytes);
  void read_vocab_json(const std::string& vocab_json, const std::string& merges_txt);
  std::pair<std::string, std::string> merge_pair(const std::string& line, int line_number) const;
  std::vector<int64_t> bpe_ids(const std::string& word) const;

  std::string source_;
  int vocab_size_ = 0;
  int64_t sot_id_ = 0;
  int64_t eot_id_ = 0;
  std::optional<int64_t> unknown_id_;  // for tokens the vocabulary lacks; none in OpenAI's form
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int64_t> token_to_id_;
  std::unordered_map<std::string, int> merge_rank_;  // key: first + ' ' + second
  std::shared_ptr<BpeCache> cache_;                  // word -> ids
};

// The text as the reference tokenizer sees it after its clean-up (ftfy fixes, HTML unescaped,
// whitespace collapsed, lower case), in UTF-8. Throws Error(Input) on invalid UTF-8.
std::string clean_text(const std::string& text);

// Where a vocabulary may be, for load_tokenizer. The library looks nowhere by itself: the
// executables fill this from their options and environment (environment.h).
struct VocabularySources {
  std::string explicit_path;     // --vocab; empty: not given
  std::string environment_path;  // e.g. $CLIPXAI_VOCAB; empty: not set
  // Glob patterns of Python site directories, most specific first, where pip-installed `clip`
  // and `open_clip` keep bpe_simple_vocab_16e6.txt.gz.
  std::vector<std::string> site_patterns;
};

// The vocabulary looked for, in order: `sources.explicit_path`, the one that comes with the model
// (`embedded`: in its archive, or its folder's vocab.json and merges.txt),
// `sources.environment_path`, then {clip,open_clip}/bpe_simple_vocab_16e6.txt.gz below each
// directory matching a site pattern. An explicit or environment path that cannot be read is an
// error rather than a reason to look further. Throws Error(Model) listing every place looked when
// none is found.
Tokenizer load_tokenizer(const VocabularySources& sources,
                         const std::optional<VocabularyFiles>& embedded,
                         const std::string& model_path, int vocab_size);

}  // namespace clipxai
