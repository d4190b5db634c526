#include "clipxai/tokenizer.h"

#include <glob.h>
#include <sys/stat.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "clipxai/error.h"
#include "clipxai/input_file.h"
#include "text_cleanup.h"

namespace clipxai {

struct Tokenizer::BpeCache {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int64_t>> ids;
};

namespace {

constexpr std::string_view kStartOfText = "<|startoftext|>";
constexpr std::string_view kEndOfText = "<|endoftext|>";
constexpr std::string_view kEndOfWord = "</w>";
constexpr int kByteTokens = 256;
constexpr int kNonMergeTokens = 2 * kByteTokens + 2;  // bytes, bytes + "</w>", SOT, EOT
constexpr const char* kVocabFileName = "bpe_simple_vocab_16e6.txt.gz";

// The reference's bytes_to_unicode(): every byte is shown as a printable character, the
// printable Latin-1 bytes as themselves and the others as U+0100 onwards. `bytes_in_id_order`
// is the order of the 256 byte tokens in the vocabulary.
struct ByteSymbols {
  std::array<int, 256> bytes_in_id_order{};
  std::array<std::string, 256> symbol{};                // UTF-8 of the character of each byte
  std::unordered_map<char32_t, unsigned char> byte_of;  // the inverse, per character
};

const ByteSymbols& byte_symbols() {
  static const ByteSymbols symbols = [] {
    ByteSymbols s;
    std::array<char32_t, 256> character{};
    std::array<bool, 256> printable{};
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      if (printable[b]) {
        character[b] = static_cast<char32_t>(b);
        s.bytes_in_id_order[next++] = b;
      }
    }
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
      if (!printable[b]) {
        character[b] = static_cast<char32_t>(256 + shifted++);
        s.bytes_in_id_order[next++] = b;
      }
    }
    for (int b = 0; b < 256; ++b) {
      s.symbol[b] = text::encode_utf8(std::u32string(1, character[b]));
      s.byte_of[character[b]] = static_cast<unsigned char>(b);
    }
    return s;
  }();
  return symbols;
}

// How messages name a vocabulary: by its source, which for one inside a model says so already
// ("vocabulary embedded in m.pt").
std::string vocabulary_named(const std::string& source) {
  return source.rfind("vocabulary ", 0) == 0 ? source : "vocabulary " + source;
}

std::string gunzip(const std::string& data, const std::string& source) {
  if (data.size() < 2 || static_cast<unsigned char>(data[0]) != 0x1F ||
      static_cast<unsigned char>(data[1]) != 0x8B) {
    throw model_error(vocabulary_named(source) +
                      " is not gzip data (expected a gzip'd BPE merge list like " + kVocabFileName +
                      ")");
  }
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
    throw Error(ErrorCategory::Internal, "zlib could not start decompressing " + source);
  }
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  std::string out;
  std::array<char, 1 << 16> buffer;
  int status = Z_OK;
  while (true) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer.data());
    stream.avail_out = static_cast<uInt>(buffer.size());
    status = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer.data(), buffer.size() - stream.avail_out);
    if (status == Z_STREAM_END) {
      if (stream.avail_in == 0) break;
      inflateReset(&stream);  // a further gzip member follows
    } else if (status != Z_OK) {
      break;
    }
  }
  const std::string message = stream.msg ? stream.msg : "truncated data";
  inflateEnd(&stream);
  if (status != Z_STREAM_END) {
    throw model_error(vocabulary_named(source) + " is damaged gzip data (" + message + ")");
  }
  return out;
}

// Python's str.split() of one line: fields separated by ASCII whitespace.
std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream stream(line);
  for (std::string field; stream >> field;) fields.push_back(field);
  return fields;
}

// A piece of the reference's pre-tokenising regex
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (IGNORECASE) on the cleaned text.
struct Piece {
  enum Kind { kWord, kStartOfText, kEndOfText };
  std::u32string text;
  Kind kind = kWord;
};

// Length of `literal` at `pos` when it matches case-insensitively (simple case folding), else 0.
size_t match_ignoring_case(const std::u32string& s, size_t pos, std::u32string_view literal) {
  if (s.size() - pos < literal.size()) return 0;
  for (size_t i = 0; i < literal.size(); ++i) {
    if (static_cast<char32_t>(u_foldCase(s[pos + i], U_FOLD_CASE_DEFAULT)) != literal[i]) return 0;
  }
  return literal.size();
}

std::vector<Piece> pre_tokenize(const std::u32string& s) {
  static constexpr std::pair<std::u32string_view, Piece::Kind> kSpecials[] = {
      {U"<|startoftext|>", Piece::kStartOfText}, {U"<|endoftext|>", Piece::kEndOfText}};
  static constexpr std::u32string_view kContractions[] = {U"'s", U"'t",  U"'re", U"'ve",
                                                          U"'m", U"'ll", U"'d"};
  auto is_other = [](char32_t c) {
    return !text::is_space(c) && !text::is_letter(c) && !text::is_number(c);
  };
  std::vector<Piece> pieces;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t length = 0;
    Piece::Kind kind = Piece::kWord;
    for (const auto& [literal, special_kind] : kSpecials) {
      if (length == 0 && (length = match_ignoring_case(s, pos, literal)) > 0) kind = special_kind;
    }
    for (auto literal : kContractions) {
      if (length == 0) length = match_ignoring_case(s, pos, literal);
    }
    if (length == 0) {
      if (text::is_letter(s[pos])) {
        while (pos + length < s.size() && text::is_letter(s[pos + length])) ++length;
      } else if (text::is_number(s[pos])) {
        length = 1;
      } else {
        while (pos + length < s.size() && is_other(s[pos + length])) ++length;
      }
    }
    if (length == 0) {
      ++pos;  // whitespace between pieces
      continue;
    }
    pieces.push_back({s.substr(pos, length), kind});
    pos += length;
  }
  return pieces;
}

// `origin`: where the path came from ("--vocab"), or empty.
std::string read_vocab_file(const std::string& path, const std::string& origin) {
  return read_input_file(path, origin.empty() ? "vocabulary" : "vocabulary (from " + origin + ")",
                         kMaxTextInputBytes, ErrorCategory::Model);
}

std::vector<std::string> glob_directories(const std::string& pattern) {
  glob_t matches{};
  std::vector<std::string> directories;
  if (::glob(pattern.c_str(), GLOB_ONLYDIR, nullptr, &matches) == 0) {
    directories.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  }
  globfree(&matches);
  return directories;
}

}  // namespace

Tokenizer::Tokenizer(const VocabularyFiles& files, int vocab_size)
    : source_(files.source), vocab_size_(vocab_size), cache_(std::make_shared<BpeCache>()) {
  if (files.vocab_json.empty() && files.merges_txt.empty()) {
    read_openai_merges(files.gzip_merges);
  } else {
    read_vocab_json(files.vocab_json, files.merges_txt);
  }
}

void Tokenizer::read_openai_merges(const std::string& gzip_bytes) {
  if (vocab_size_ < kNonMergeTokens) {
    throw model_error("vocabulary size " + std::to_string(vocab_size_) + " for " + source_ +
                      " is below the " + std::to_string(kNonMergeTokens) +
                      " byte and special tokens");
  }
  const std::string text = gunzip(gzip_bytes, source_);
  const int merges_used = vocab_size_ - kNonMergeTokens;

  const ByteSymbols& bytes = byte_symbols();
  id_to_token_.reserve(vocab_size_);
  for (int b : bytes.bytes_in_id_order) id_to_token_.push_back(bytes.symbol[b]);
  for (int b : bytes.bytes_in_id_order) {
    id_to_token_.push_back(bytes.symbol[b] + std::string(kEndOfWord));
  }

  // Line 0 is a header; merges follow one per line, as the reference's split('\n')[1:].
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);
  for (int merge = 0; merge < merges_used; ++merge) {
    if (!std::getline(lines, line)) {
      throw model_error(vocabulary_named(source_) + " has only " + std::to_string(merge) +
                        " merges; a vocabulary of " + std::to_string(vocab_size_) +
                        " tokens needs " + std::to_string(merges_used));
    }
    const auto [first, second] = merge_pair(line, merge + 2);
    merge_rank_[first + ' ' + second] = merge;
    id_to_token_.push_back(first + second);
  }
  id_to_token_.emplace_back(kStartOfText);
  id_to_token_.emplace_back(kEndOfText);
  // Later duplicates win, as in the reference's dict(zip(vocab, range(len(vocab)))).
  for (size_t id = 0; id < id_to_token_.size(); ++id) token_to_id_[id_to_token_[id]] = id;
  sot_id_ = vocab_size_ - 2;
  eot_id_ = vocab_size_ - 1;
}

// transformers' CLIPTokenizer: the ids are vocab.json's, the merges merges.txt's lines after
// the "#version" header, at most 49152 - 256 - 2 of them, and a token the vocabulary lacks
// becomes the unknown token, <|endoftext|>.
void Tokenizer::read_vocab_json(const std::string& vocab_json, const std::string& merges_txt) {
  const nlohmann::json vocabulary = parse_json_input(
      vocab_json, vocabulary_named(source_) + ": vocab.json", ErrorCategory::Model);
  if (!vocabulary.is_object() || vocabulary.empty()) {
    throw model_error(vocabulary_named(source_) +
                      ": vocab.json is not a JSON object of token -> id");
  }
  for (const auto& [token, id] : vocabulary.items()) {
    if (!id.is_number_unsigned() || id.get<uint64_t>() >= static_cast<uint64_t>(vocab_size_)) {
      throw model_error(vocabulary_named(source_) + ": vocab.json gives \"" + token + "\" the id " +
                        id.dump() + ", outside the model's " + std::to_string(vocab_size_) +
                        " token embeddings");
    }
    token_to_id_[token] = id.get<int64_t>();
  }
  id_to_token_.assign(vocab_size_, "");
  for (const auto& [token, id] : token_to_id_) id_to_token_[id] = token;
  for (const auto& [token, id] : {std::pair{kStartOfText, &sot_id_}, {kEndOfText, &eot_id_}}) {
    const auto found = token_to_id_.find(std::string(token));
    if (found == token_to_id_.end()) {
      throw model_error(vocabulary_named(source_) + ": vocab.json has no " + std::string(token));
    }
    *id = found->second;
  }
  unknown_id_ = eot_id_;

  constexpr int kMaxMerges = 49152 - kByteTokens - 2;
  std::istringstream lines(merges_txt);
  std::string line;
  std::getline(lines, line);  // "#version: 0.2"
  for (int merge = 0; merge < kMaxMerges && std::getline(lines, line); ++merge) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) break;  // the file's end
    const auto [first, second] = merge_pair(line, merge + 2);
    merge_rank_.emplace(first + ' ' + second, merge);
  }
}

std::pair<std::string, std::string> Tokenizer::merge_pair(const std::string& line,
                                                          int line_number) const {
  const std::vector<std::string> pair = split_fields(line);
  if (pair.size() != 2) {
    throw model_error(vocabulary_named(source_) + " line " + std::to_string(line_number) +
                      " is not a BPE merge \"first second\": \"" + line + "\"");
  }
  return {pair[0], pair[1]};
}

std::vector<int64_t> Tokenizer::bpe_ids(const std::string& word) const {
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    const auto cached = cache_->ids.find(word);
    if (cached != cache_->ids.end()) return cached->second;
  }
  const ByteSymbols& bytes = byte_symbols();
  std::vector<std::string> symbols;
  for (unsigned char b : word) symbols.push_back(bytes.symbol[b]);
  symbols.back() += kEndOfWord;

  // Repeatedly merge every occurrence of the adjacent pair that was learnt first.
  while (symbols.size() > 1) {
    int best_rank = INT_MAX;
    size_t best = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto rank = merge_rank_.find(symbols[i] + ' ' + symbols[i + 1]);
      if (rank != merge_rank_.end() && rank->second < best_rank) {
        best_rank = rank->second;
        best = i;
      }
    }
    if (best_rank == INT_MAX) break;
    const std::string first = symbols[best];
    const std::string second = symbols[best + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
        merged.push_back(first + second);
        ++i;
      } else {
        merged.push_back(symbols[i]);
      }
    }
    symbols = std::move(merged);
  }

  std::vector<int64_t> ids;
  for (const std::string& symbol : symbols) {
    const auto id = token_to_id_.find(symbol);
    if (id == token_to_id_.end() && !unknown_id_) {
      throw Error(ErrorCategory::Internal, "BPE token \"" + symbol + "\" not in " + source_);
    }
    ids.push_back(id != token_to_id_.end() ? id->second : *unknown_id_);
  }
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->ids.size() >= kMaxCachedWords) cache_->ids.clear();
  cache_->ids.emplace(word, ids);
  return ids;
}

size_t Tokenizer::cached_words() const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  return cache_->ids.size();
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const Piece& piece : pre_tokenize(text::clean(text::decode_utf8(text)))) {
    if (piece.kind != Piece::kWord) {
      ids.push_back(piece.kind == Piece::kStartOfText ? sot_id_ : eot_id_);
    } else {
      const std::vector<int64_t> word_ids = bpe_ids(text::encode_utf8(piece.text));
      ids.insert(ids.end(), word_ids.begin(), word_ids.end());
    }
  }
  return ids;
}

TokenizedText Tokenizer::tokenize(const std::string& text, int context_length) const {
  if (context_length < 2) {
    throw usage_error("a context of " + std::to_string(context_length) +
                      " tokens cannot hold the start and end tokens");
  }
  const std::vector<int64_t> ids = encode(text);
  TokenizedText result;
  result.text = text;
  result.truncated = static_cast<int64_t>(ids.size()) + 2 > context_length;
  const size_t kept = result.truncated ? context_length - 2 : ids.size();
  result.ids.assign(context_length, 0);
  result.ids[0] = sot_id_;
  for (size_t i = 0; i < kept; ++i) {
    result.ids[i + 1] = ids[i];
    result.tokens.push_back(token_text(ids[i]));
  }
  result.eot_index = static_cast<int>(kept + 1);
  result.ids[result.eot_index] = eot_id_;
  return result;
}

std::string Tokenizer::token_text(int64_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(id_to_token_.size())) {
    throw input_error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                      std::to_string(id_to_token_.size()) + " tokens (" + source_ + ")");
  }
  std::string token = id_to_token_[id];
  if (token.size() >= kEndOfWord.size() &&
      token.compare(token.size() - kEndOfWord.size(), kEndOfWord.size(), kEndOfWord) == 0) {
    token.resize(token.size() - kEndOfWord.size());
  }
  const ByteSymbols& bytes = byte_symbols();
  std::string raw;
  for (char32_t c : text::decode_utf8(token)) {
    const auto byte = bytes.byte_of.find(c);
    // Characters that stand for no byte only occur in hand-made merge lists; keep them as they are.
    raw += byte != bytes.byte_of.end() ? std::string(1, static_cast<char>(byte->second))
                                       : text::encode_utf8(std::u32string(1, c));
  }
  std::string readable;
  icu::UnicodeString::fromUTF8(raw).toUTF8String(readable);
  return readable;
}

std::string clean_text(const std::string& text) {
  return text::encode_utf8(text::clean(text::decode_utf8(text)));
}

VocabularyFiles read_vocabulary_files(const std::string& path, const std::string& origin) {
  VocabularyFiles files;
  files.source = path;
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    files.vocab_json = read_vocab_file(path + "/vocab.json", origin);
    files.merges_txt = read_vocab_file(path + "/merges.txt", origin);
    return files;
  }
  std::string bytes = read_vocab_file(path, origin);
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && bytes[first] == '{') {
    const std::string merges = std::filesystem::path(path).replace_filename("merges.txt").string();
    files.merges_txt = read_vocab_file(merges, origin);
    files.vocab_json = std::move(bytes);
  } else {
    files.gzip_merges = std::move(bytes);
  }
  return files;
}

Tokenizer load_tokenizer(const VocabularySources& sources,
                         const std::optional<VocabularyFiles>& embedded,
                         const std::string& model_path, int vocab_size) {
  if (!sources.explicit_path.empty()) {
    return Tokenizer(read_vocabulary_files(sources.explicit_path, "--vocab"), vocab_size);
  }
  if (embedded) return Tokenizer(*embedded, vocab_size);
  if (!sources.environment_path.empty()) {
    return Tokenizer(read_vocabulary_files(sources.environment_path, "$CLIPXAI_VOCAB"), vocab_size);
  }
  std::vector<std::string> looked = {"--vocab (not given)",
                                     "the model " + model_path + " (no vocabulary with it)",
                                     "$CLIPXAI_VOCAB (not set)"};
  const std::string packages = std::string("{clip,open_clip}/") + kVocabFileName;
  for (const std::string& pattern : sources.site_patterns) {
    const std::vector<std::string> directories = glob_directories(pattern);
    for (const std::string& directory : directories) {
      for (const char* package : {"clip", "open_clip"}) {
        const std::string path = directory + "/" + package + "/" + kVocabFileName;
        if (!input_file_problem(path))
          return Tokenizer(read_vocabulary_files(path, ""), vocab_size);
      }
      looked.push_back(directory + "/" + packages);
    }
    if (directories.empty()) looked.push_back(pattern + "/" + packages);
  }
  std::string message =
      "no CLIP vocabulary (" + std::string(kVocabFileName) + ") found; looked in: ";
  for (size_t i = 0; i < looked.size(); ++i) message += (i ? ", " : "") + looked[i];
  throw model_error(message + ". Pass --vocab FILE or set CLIPXAI_VOCAB.");
}

}  // namespace clipxai
