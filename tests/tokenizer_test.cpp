#include "clipxai/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "clipxai/environment.h"
#include "clipxai/error.h"
#include "test_files.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

const fs::path kSharedClip = fs::path(CLIPXAI_SHARED_DIR) / "clip";
const fs::path kOpenAIVocab = kSharedClip / "bpe_simple_vocab_16e6.txt.gz";
constexpr int64_t kSot = 49406;
constexpr int64_t kEot = 49407;

using testing::read_bytes;
using testing::write_bytes;

std::string gzip(const std::string& text) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&stream, text.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  stream.avail_in = static_cast<uInt>(text.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// Runs `action` and returns the clipxai::Error it throws (failing the test if it throws none).
template <typename Action>
Error error_from(Action action) {
  try {
    action();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "no clipxai::Error thrown";
  return Error(ErrorCategory::Internal, "");
}

// A tiny merge list: ids 0-511 are bytes, then one id per merge, then SOT and EOT.
// Byte ids follow the reference's byte order, which starts at '!': 'a' is 97 - 33 = 64, and its
// end-of-word form is 256 higher.
const std::string kTinyMerges =
    "#version: test\n"
    "t h\n"       // 512: "th"
    "th e</w>\n"  // 513: "the</w>"
    "h i</w>\n"   // 514: "hi</w>"
    "a b</w>\n";  // 515: "ab</w>" (only in a vocabulary of 518)
constexpr int64_t kIdA = 'a' - '!';
constexpr int64_t kIdBEndOfWord = 256 + 'b' - '!';
constexpr int64_t kIdIEndOfWord = 256 + 'i' - '!';

Tokenizer tiny_tokenizer(int vocab_size) {
  return Tokenizer(VocabularyFiles{"tiny merges", gzip(kTinyMerges), "", ""}, vocab_size);
}

// ---- The reference's own outputs (shared/clip/tokenizer_cases.json) ----

class OpenAIVocabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (fs::exists(kOpenAIVocab)) {
      tokenizer_ = new Tokenizer(read_vocabulary_files(kOpenAIVocab, ""));
    }
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr) GTEST_SKIP() << kOpenAIVocab << " is absent";
  }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  static Tokenizer* tokenizer_;
};
Tokenizer* OpenAIVocabTest::tokenizer_ = nullptr;

TEST_F(OpenAIVocabTest, MatchesEveryReferenceCase) {
  const fs::path cases_path = kSharedClip / "tokenizer_cases.json";
  if (!fs::exists(cases_path)) GTEST_SKIP() << cases_path << " is absent";
  const nlohmann::json cases = nlohmann::json::parse(read_bytes(cases_path))["cases"];
  ASSERT_GT(cases.size(), 0u);
  for (const auto& reference : cases) {
    const std::string text = reference["text"];
    SCOPED_TRACE("text: " + text);
    EXPECT_EQ(tokenizer().encode(text), reference["bpe_ids"].get<std::vector<int64_t>>());
    const TokenizedText tokenized = tokenizer().tokenize(text);
    EXPECT_EQ(tokenized.ids, reference["tokens77"].get<std::vector<int64_t>>());
    EXPECT_EQ(tokenized.truncated, !reference["fits_in_context"].get<bool>());
    EXPECT_EQ(tokenized.ids[tokenized.eot_index], kEot);
    EXPECT_EQ(tokenized.tokens.size(), static_cast<size_t>(tokenized.eot_index - 1));
  }
}

TEST_F(OpenAIVocabTest, SpecialIdsAndReadableTokens) {
  EXPECT_EQ(tokenizer().sot_id(), kSot);
  EXPECT_EQ(tokenizer().eot_id(), kEot);
  EXPECT_EQ(tokenizer().vocab_size(), Tokenizer::kOpenAIVocabSize);
  const TokenizedText tokenized = tokenizer().tokenize("A photo of a GIRL.");
  EXPECT_EQ(tokenized.tokens, (std::vector<std::string>{"a", "photo", "of", "a", "girl", "."}));
  EXPECT_EQ(tokenizer().token_text(kSot), "<|startoftext|>");
  EXPECT_EQ(tokenizer().token_text(kEot), "<|endoftext|>");
}

TEST_F(OpenAIVocabTest, PartialUtf8TokensReadAsReplacementCharacters) {
  // A lone byte of a multi-byte character is a token of its own in the byte vocabulary. Byte ids
  // count the printable bytes '!'..'~' (94), '¡'..'¬' (12), then '®' (0xAE) onwards.
  const int64_t lead_byte_of_emoji = 94 + 12 + (0xF0 - 0xAE);
  EXPECT_EQ(tokenizer().token_text(lead_byte_of_emoji), "\xEF\xBF\xBD");
}

// Text written with typographic or encoded characters tokenizes as its plain equivalent.
TEST_F(OpenAIVocabTest, CleanUpMakesTextsEquivalent) {
  const std::vector<std::pair<std::string, std::string>> equivalents = {
      {"ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ", "fullwidth text"},
      {"ﬁne ﬂower ﬀ ﬃ", "fine flower ff ffi"},
      {"\u201Cdon\u2019t\u201D", "\"don't\""},
      {"Tom &amp;amp; Jerry", "tom & jerry"},
      {"&#8220;hi&#8221;", "\"hi\""},
      {"caf&eacute; CAF&EACUTE;", "café café"},
      {"cafe\u0301", "café"},
      {"\x1B[31mred\x1B[0m alert", "red alert"},
      {"\u00A0non\u2003breaking\u3000space\u00A0", "non breaking space"},
      {"A\nB\r\nC\tD", "a b c d"},
      {"ΟΔΟΣ", "οδος"},
  };
  for (const auto& [typographic, plain] : equivalents) {
    SCOPED_TRACE(typographic);
    EXPECT_EQ(tokenizer().encode(typographic), tokenizer().encode(plain));
  }
}

TEST_F(OpenAIVocabTest, TruncatesKeepingEndOfTextLast) {
  auto repeated = [](int words) {
    std::string text;
    for (int i = 0; i < words; ++i) text += "dog ";
    return text;
  };
  ASSERT_EQ(tokenizer().encode("dog").size(), 1u);
  struct Case {
    int words;
    int context_length;
    bool truncated;
    int eot_index;
  };
  for (const Case& c :
       {Case{75, 77, false, 76}, Case{76, 77, true, 76}, Case{200, 77, true, 76},
        Case{3, 5, false, 4}, Case{4, 5, true, 4}, Case{0, 2, false, 1}, Case{1, 2, true, 1}}) {
    SCOPED_TRACE(std::to_string(c.words) + " words in " + std::to_string(c.context_length));
    const TokenizedText tokenized = tokenizer().tokenize(repeated(c.words), c.context_length);
    ASSERT_EQ(tokenized.ids.size(), static_cast<size_t>(c.context_length));
    EXPECT_EQ(tokenized.truncated, c.truncated);
    EXPECT_EQ(tokenized.eot_index, c.eot_index);
    EXPECT_EQ(tokenized.ids.front(), kSot);
    EXPECT_EQ(tokenized.ids[c.eot_index], kEot);
    EXPECT_EQ(tokenized.tokens, std::vector<std::string>(c.eot_index - 1, "dog"));
  }
  EXPECT_EQ(error_from([&] { tokenizer().tokenize("dog", 1); }).category(), ErrorCategory::Usage);
}

TEST_F(OpenAIVocabTest, EmptyTextIsStartAndEndOnly) {
  for (const std::string text : {"", "   ", "\t\n"}) {
    const TokenizedText tokenized = tokenizer().tokenize(text);
    EXPECT_EQ(tokenized.ids[0], kSot);
    EXPECT_EQ(tokenized.ids[1], kEot);
    EXPECT_EQ(tokenized.eot_index, 1);
    EXPECT_TRUE(tokenized.tokens.empty());
    EXPECT_FALSE(tokenized.truncated);
  }
}

// ---- Clean-up (no vocabulary needed) ----

TEST(CleanTextTest, FollowsTheReferenceCleanUp) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      // whitespace: Python's \s, collapsed and stripped
      {"  lots   of\twhite\nspace  ", "lots of white space"},
      {"a\u00A0b\u2028c\u2029d", "a b c d"},
      {"a\x1C"
       "b",
       "ab"},  // ftfy drops it before Python's \s would see it
      // lower case as Python's str.lower(): full mappings and final sigma
      {"ÀÉÎÕÜ ΟΔΟΣ. İ", "àéîõü οδος. i̇"},
      // ftfy: quotes, ligatures and digraphs, width, C1 controls, controls, terminal escapes, NFC
      {"\u2018a\u2019 \u201Cb\u201D \u201Ac\u201B \u201Ed\u201F \u02BCe",
       "'a' \"b\" 'c' \"d\" \u02BCe"},
      {"ﬁ ﬂ ﬀ ﬃ ﬄ ﬆ Ĳ Ǆ ǅ ǈ ŉ", "fi fl ff ffi ffl st ij ǆ ǆ ǉ ŉ"},
      {"ＡＢＣ　１２３！", "abc 123!"},
      {"\u0093quoted\u0094 \u0085", "\"quoted\" …"},
      {"a\u200Bb\uFEFFc\x7F"
       "d",
       "a\u200Bbcd"},
      {"\x1B[1;31mred\x1B[0m", "red"},
      {"e\u0301 A\u030A", "é å"},
      // HTML: ftfy's unescape (repeated while the text is not HTML), then html.unescape twice
      {"Tom &amp; Jerry &lt;3", "tom & jerry <3"},
      {"&amp;amp;amp;lt;3", "<3"},
      {"<b>&amp;amp;amp;</b>", "<b>&amp;</b>"},
      {"caf&eacute; CAF&EACUTE; &ampx &amp", "café café &x &"},
      {"&#8220;hi&#8221; &#x1F600; &#128; &#59;", "\"hi\" 😀 € ;"},
      {"x&#0;y&#1;z &#xD800; &#99999999999;", "x\uFFFDyz \uFFFD \uFFFD"},
      {"&notit; &notin &unknown; &", "¬it; ¬in &unknown; &"},
      {"&nbsp;padded&nbsp;", "padded"},
      {"", ""},
  };
  for (const auto& [text, cleaned] : cases) {
    EXPECT_EQ(clean_text(text), cleaned) << "text: " << text;
  }
}

TEST(CleanTextTest, RejectsInvalidUtf8NamingThePrompt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xFF", "\\xFF"},
      {"caf\xC3", "caf\\xC3"},
      {"over\xC0\xAFlong", "over\\xC0\\xAFlong"},
      {"surrogate \xED\xA0\x80", "surrogate \\xED\\xA0\\x80"},
      {"beyond \xF4\x90\x80\x80", "beyond \\xF4\\x90\\x80\\x80"},
      {"\x80 continuation", "\\x80 continuation"},
  };
  for (const auto& [text, shown] : cases) {
    const Error error = error_from([&] { clean_text(text); });
    EXPECT_EQ(error.category(), ErrorCategory::Input);
    EXPECT_NE(std::string(error.what()).find("\"" + shown + "\" is not valid UTF-8"),
              std::string::npos)
        << error.what();
  }
}

// ---- Merge lists ----

TEST(MergeListTest, VocabularySizeSelectsTheMergesUsed) {
  struct Case {
    int vocab_size;
    std::string text;
    std::vector<int64_t> ids;
  };
  const std::vector<Case> cases = {
      {517, "the", {513}},
      {517, "hi", {514}},
      {517, "thi", {512, kIdIEndOfWord}},  // "t h" was learnt before "h i</w>"
      {517, "ab", {kIdA, kIdBEndOfWord}},  // "a b</w>" is merge 4, beyond a vocabulary of 517
      {518, "ab", {515}},
      {517, "the hi", {513, 514}},
      {517, "<|endoftext|>", {516}},
      {518, "<|startoftext|>", {516}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text + " with " + std::to_string(c.vocab_size));
    EXPECT_EQ(tiny_tokenizer(c.vocab_size).encode(c.text), c.ids);
  }
  const Tokenizer tokenizer = tiny_tokenizer(518);
  EXPECT_EQ(tokenizer.sot_id(), 516);
  EXPECT_EQ(tokenizer.eot_id(), 517);
  EXPECT_EQ(tokenizer.token_text(513), "the");
  EXPECT_EQ(tokenizer.token_text(kIdA), "a");
  EXPECT_EQ(tokenizer.tokenize("The ab").tokens, (std::vector<std::string>{"the", "ab"}));
  EXPECT_EQ(error_from([&] { tokenizer.token_text(518); }).category(), ErrorCategory::Input);
}

TEST(MergeListTest, TheCacheOfWordsStaysBounded) {
  const Tokenizer tokenizer = tiny_tokenizer(518);
  // Distinct words, as a server meets them: letters only, so each is one word.
  const auto word = [](size_t n) {
    std::string text;
    for (; n > 0 || text.empty(); n /= 26) text += static_cast<char>('a' + n % 26);
    return text;
  };
  for (size_t i = 0; i < Tokenizer::kMaxCachedWords + 1000; ++i) tokenizer.encode(word(i));
  EXPECT_LE(tokenizer.cached_words(), Tokenizer::kMaxCachedWords);
  EXPECT_GT(tokenizer.cached_words(), 0u);
  EXPECT_EQ(tokenizer.encode("the hi"), (std::vector<int64_t>{513, 514}));
}

// ---- vocab.json + merges.txt (transformers' CLIPTokenizer files) ----

// Ids chosen unlike OpenAI's layout: the special tokens first, so nothing can be assumed.
const std::string kTinyVocabJson =
    R"({"<|endoftext|>": 0, "<|startoftext|>": 1, "x</w>": 3, "th": 5, "the</w>": 7})";
const std::string kTinyMergesTxt = "#version: 0.2\nt h\nth e</w>\n";

Tokenizer tiny_vocab_json_tokenizer() {
  return Tokenizer(VocabularyFiles{"tiny vocab.json", "", kTinyVocabJson, kTinyMergesTxt}, 8);
}

TEST(VocabJsonTest, IdsAndSpecialTokensComeFromTheVocabulary) {
  const Tokenizer tokenizer = tiny_vocab_json_tokenizer();
  EXPECT_EQ(tokenizer.sot_id(), 1);
  EXPECT_EQ(tokenizer.eot_id(), 0);
  struct Case {
    std::string text;
    std::vector<int64_t> ids;
  };
  const std::vector<Case> cases = {
      {"the", {7}},
      {"x", {3}},
      {"q", {0}},  // not in vocab.json: the unknown token, <|endoftext|>
      {"the x", {7, 3}},
  };
  for (const Case& c : cases) EXPECT_EQ(tokenizer.encode(c.text), c.ids) << c.text;
  const TokenizedText tokenized = tokenizer.tokenize("the", 4);
  EXPECT_EQ(tokenized.ids, (std::vector<int64_t>{1, 7, 0, 0}));
  EXPECT_EQ(tokenized.eot_index, 2);
  EXPECT_EQ(tokenized.tokens, (std::vector<std::string>{"the"}));
}

TEST(VocabJsonTest, BadFilesAreModelErrorsNamingTheSource) {
  struct Case {
    std::string name;
    std::string vocab_json, merges_txt;
    int vocab_size;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"not JSON", "{\"a\": ", kTinyMergesTxt, 8, "vocab.json: not valid JSON"},
      {"not an object", "[1, 2]", kTinyMergesTxt, 8, "not a JSON object of token -> id"},
      {"id past the embeddings", kTinyVocabJson, kTinyMergesTxt, 7,
       "gives \"the</w>\" the id 7, outside the model's 7 token embeddings"},
      {"negative id", R"({"<|endoftext|>": -1, "<|startoftext|>": 1})", kTinyMergesTxt, 8,
       "the id -1"},
      {"no end of text", R"({"<|startoftext|>": 1})", kTinyMergesTxt, 8,
       "vocab.json has no <|endoftext|>"},
      {"malformed merge", kTinyVocabJson, "#version: 0.2\nt h\nthe\n", 8,
       "line 3 is not a BPE merge"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Error error = error_from([&] {
      Tokenizer(VocabularyFiles{"the-folder/vocab.json", "", c.vocab_json, c.merges_txt},
                c.vocab_size);
    });
    EXPECT_EQ(error.category(), ErrorCategory::Model);
    const std::string message = error.what();
    EXPECT_NE(message.find("the-folder/vocab.json"), std::string::npos) << message;
    EXPECT_NE(message.find(c.message_part), std::string::npos) << message;
  }
}

TEST(MergeListTest, BadDataIsAModelErrorNamingTheSource) {
  struct Case {
    std::string name;
    std::string bytes;
    int vocab_size;
    std::string message_part;
  };
  const std::string valid = gzip(kTinyMerges);
  const std::vector<Case> cases = {
      {"plain text", kTinyMerges, 517, "is not gzip data"},
      {"truncated gzip", valid.substr(0, valid.size() / 2), 517, "is damaged gzip data"},
      {"too few merges", valid, 519, "has only 4 merges"},
      {"malformed merge", gzip("#v\nt h\nnot a merge\n"), 516, "line 3 is not a BPE merge"},
      {"vocabulary too small", valid, 513, "vocabulary size 513"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Error error = error_from([&] {
      Tokenizer(VocabularyFiles{"the-source.gz", c.bytes, "", ""}, c.vocab_size);
    });
    EXPECT_EQ(error.category(), ErrorCategory::Model);
    const std::string message = error.what();
    EXPECT_NE(message.find("the-source.gz"), std::string::npos) << message;
    EXPECT_NE(message.find(c.message_part), std::string::npos) << message;
  }
}

TEST(MergeListTest, AnEmbeddedVocabularyIsNamedOnce) {
  const Error error = error_from([] {
    Tokenizer(VocabularyFiles{"vocabulary embedded in model.pt", kTinyMerges, "", ""}, 517);
  });
  EXPECT_EQ(std::string(error.what()),
            "vocabulary embedded in model.pt is not gzip data (expected a gzip'd BPE merge list "
            "like bpe_simple_vocab_16e6.txt.gz)");
}

// ---- Where the vocabulary comes from ----

// Sets or unsets environment variables for one test, restoring them afterwards.
class EnvironmentGuard {
 public:
  void set(const std::string& name, const std::optional<std::string>& value) {
    if (saved_.count(name) == 0) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      setenv(name.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
  }
  ~EnvironmentGuard() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

class LoadTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("clipxai_tokenizer_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "home");
    fs::create_directories(root_ / "venv");
    environment_.set("CLIPXAI_VOCAB", std::nullopt);
    environment_.set("CONDA_PREFIX", std::nullopt);
    environment_.set("HOME", (root_ / "home").string());
    environment_.set("VIRTUAL_ENV", (root_ / "venv").string());
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string vocab_file(const std::string& relative) {
    const fs::path path = root_ / relative;
    write_bytes(path, gzip(kTinyMerges));
    return path.string();
  }

  fs::path root_;
  EnvironmentGuard environment_;
};

TEST_F(LoadTokenizerTest, FollowsTheLookupOrder) {
  const std::string explicit_path = vocab_file("explicit.gz");
  const std::string env_path = vocab_file("env.gz");
  const std::string user_path =
      vocab_file("home/.local/lib/python3.11/site-packages/open_clip/bpe_simple_vocab_16e6.txt.gz");
  const std::optional<VocabularyFiles> embedded =
      VocabularyFiles{"vocabulary embedded in model.cxm", gzip(kTinyMerges), "", ""};
  auto source = [&](const std::string& path, const std::optional<VocabularyFiles>& bytes) {
    return load_tokenizer(path, bytes, "model.cxm", 517).source();
  };

  environment_.set("CLIPXAI_VOCAB", env_path);
  EXPECT_EQ(source(explicit_path, embedded), explicit_path);
  EXPECT_EQ(source("", embedded), "vocabulary embedded in model.cxm");
  EXPECT_EQ(source("", std::nullopt), env_path);
  environment_.set("CLIPXAI_VOCAB", std::nullopt);
  EXPECT_EQ(source("", std::nullopt), user_path);
  const std::string venv_path =
      vocab_file("venv/lib/python3.12/site-packages/clip/bpe_simple_vocab_16e6.txt.gz");
  EXPECT_EQ(source("", std::nullopt), venv_path);
}

TEST_F(LoadTokenizerTest, ExplicitPlacesThatCannotBeReadAreErrors) {
  const std::string missing = (root_ / "missing.gz").string();
  vocab_file("venv/lib/python3.11/site-packages/clip/bpe_simple_vocab_16e6.txt.gz");
  const Error from_option = error_from([&] { load_tokenizer(missing, std::nullopt, "m", 517); });
  EXPECT_EQ(from_option.category(), ErrorCategory::Model);
  EXPECT_NE(std::string(from_option.what()).find(missing), std::string::npos);

  environment_.set("CLIPXAI_VOCAB", missing);
  const Error from_env = error_from([&] { load_tokenizer("", std::nullopt, "m", 517); });
  EXPECT_EQ(from_env.category(), ErrorCategory::Model);
  EXPECT_NE(std::string(from_env.what())
                .find(missing + ": cannot read the vocabulary (from $CLIPXAI_VOCAB)"),
            std::string::npos)
      << from_env.what();
}

TEST_F(LoadTokenizerTest, NothingFoundListsEveryPlaceLooked) {
  std::string message;
  try {
    const Tokenizer found = load_tokenizer("", std::nullopt, "model.cxm", 517);
    GTEST_SKIP() << "a vocabulary is installed system-wide: " << found.source();
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Model);
    message = error.what();
  }
  for (const std::string& place :
       {std::string("--vocab"), std::string("model.cxm"), std::string("$CLIPXAI_VOCAB"),
        (root_ / "venv/lib/python3*/site-packages/{clip,open_clip}/").string(),
        (root_ / "home/.local/lib/python3*/site-packages/{clip,open_clip}/").string(),
        std::string("/usr/lib/python3/dist-packages")}) {
    EXPECT_NE(message.find(place), std::string::npos) << place << " missing from: " << message;
  }
}

}  // namespace
}  // namespace clipxai
