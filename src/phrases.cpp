// Noun phrases from Link Grammar's first (best) linkage; the rules are phrases.h's.
#include "clipxai/phrases.h"

#include <link-grammar/link-includes.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>
#include <set>

#include "clipxai/error.h"
#include "text_cleanup.h"

namespace clipxai {
namespace {

using Clock = std::chrono::steady_clock;

// Link Grammar reports through one process-wide handler; its messages are kept per thread so a
// failure can quote them, and never reach a stream.
thread_local std::string link_grammar_messages;

void keep_link_grammar_message(lg_errinfo* error, void*) {
  if (link_grammar_messages.size() < 2000) {
    link_grammar_messages += error->text;
    if (!link_grammar_messages.empty() && link_grammar_messages.back() != '\n') {
      link_grammar_messages += '\n';
    }
  }
}

void route_link_grammar_messages() {
  static std::once_flag once;
  std::call_once(once, [] { lg_error_set_handler(keep_link_grammar_message, nullptr); });
}

// The labels (their upper-case part: "Ds**c" -> "D") of the links by which a word modifies a
// noun to its right, and so belongs to that noun's phrase.
bool is_modifier_link(const std::string& label) {
  static const std::set<std::string> kModifiers = {"D", "DD", "DG", "DT", "A",  "AN", "AJ",
                                                   "G", "GN", "YS", "YP", "EA", "NN", "L"};
  size_t upper = 0;
  while (upper < label.size() && std::isupper(static_cast<unsigned char>(label[upper]))) ++upper;
  return kModifiers.count(label.substr(0, upper)) > 0;
}

// Whether a linkage word ("girl.n", "horse.n-m", "Ben.m", "Hermione[!<CAPITALIZED-WORDS>]")
// is a noun: a noun, given-name or place subscript, or a capitalised word Link Grammar took for
// a proper name. Unlinked words ("[man]") are not.
bool is_noun_word(const std::string& word) {
  if (word.empty() || word.front() == '[') return false;
  if (word.find("CAPITALIZED-WORDS") != std::string::npos) return true;
  const size_t dot = word.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == word.size()) return false;
  const std::string subscript = word.substr(dot + 1);
  if (subscript.find_first_not_of("abcdefghijklmnopqrstuvwxyz-") != std::string::npos) {
    return false;
  }
  static const std::set<std::string> kNounSubscripts = {"s", "m", "f", "b", "l"};
  return subscript[0] == 'n' || kNounSubscripts.count(subscript) > 0;
}

size_t code_points_before(const std::string& text, size_t byte) {
  size_t count = 0;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++count;
  }
  return count;
}

// A parse of the text, with the byte offsets of its words in the text.
struct ParsedWord {
  std::string word;  // the linkage's form, with Link Grammar's subscript
  size_t byte_start = 0, byte_end = 0;
  bool in_text = true;  // false for the walls and the "there is" prefix
};
struct Parse {
  std::vector<ParsedWord> words;
  std::vector<std::pair<size_t, size_t>> modifier_links;  // (left word, right word)
  int unlinked = 0;
};

// Adds the parse of the piece starting at byte `offset` of the text after `whole`'s words.
void append_piece(Parse& whole, const Parse& piece, size_t offset) {
  const size_t first_word = whole.words.size();
  for (ParsedWord word : piece.words) {
    word.byte_start += offset;
    word.byte_end += offset;
    whole.words.push_back(std::move(word));
  }
  for (const auto& [left, right] : piece.modifier_links) {
    whole.modifier_links.emplace_back(first_word + left, first_word + right);
  }
}

bool is_token_byte(unsigned char c) {
  return c >= 0x80 || std::isalnum(c) || c == '\'' || c == '-';
}

// Blanks separate tokens; control bytes count as blanks (a NUL would end Link Grammar's input).
bool is_blank_byte(unsigned char c) { return c < 0x20 || c == ' ' || c == 0x7F; }

// phrase_parse_pieces' tokens, with how strongly a piece may end after each.
struct Token {
  size_t start, end;  // bytes of the text
  int cut_strength;   // 2 a sentence's end, 1 a comma or colon, else 0
};

std::vector<Token> tokens_of(std::string_view text) {
  std::vector<Token> tokens;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (is_blank_byte(c)) {
      if (c == '\n' && !tokens.empty()) tokens.back().cut_strength = 2;
      ++i;
      continue;
    }
    size_t end = i + 1;
    int strength = 0;
    if (is_token_byte(c)) {
      while (end < text.size() && is_token_byte(static_cast<unsigned char>(text[end]))) ++end;
    } else if (end == text.size() || is_blank_byte(static_cast<unsigned char>(text[end]))) {
      // Followed by a blank: "3.5" and "Lon:r" are not boundaries.
      if (std::string_view(".!?;").find(static_cast<char>(c)) != std::string_view::npos) {
        strength = 2;
      } else if (c == ',' || c == ':') {
        strength = 1;
      }
    }
    tokens.push_back({i, end, strength});
    i = end;
  }
  return tokens;
}

// A piece as Link Grammar reads it: its tokens joined by single spaces, so that Link Grammar's
// tokenizer never splits punctuation off a word itself. Its word graph fails an assertion, which
// kills the process, on strings such as "(,a,..aa(7l)" or "a dog *)*********7l"; with the
// punctuation already apart, random strings of words and punctuation never did.
struct SpacedPiece {
  std::string text;
  std::vector<size_t> source_byte;  // for each byte of `text`, its byte in the piece
};

SpacedPiece spaced_piece(std::string_view piece) {
  SpacedPiece spaced;
  for (const Token& token : tokens_of(piece)) {
    if (!spaced.text.empty()) {
      spaced.text += ' ';
      spaced.source_byte.push_back(token.start);
    }
    for (size_t byte = token.start; byte < token.end; ++byte) {
      spaced.text += piece[byte];
      spaced.source_byte.push_back(byte);
    }
  }
  return spaced;
}

std::string lower_first_determiner(const std::string& text) {
  static const std::set<std::string> kDeterminers = {"a",     "an",    "the",  "this", "that",
                                                     "these", "those", "some", "my",   "his",
                                                     "her",   "their", "our",  "its",  "your"};
  const size_t space = text.find(' ');
  std::string first = text.substr(0, space);
  for (char& c : first) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (kDeterminers.count(first) == 0) return text;
  std::string lowered = text;
  lowered[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(lowered[0])));
  return lowered;
}

}  // namespace

struct PhraseParser::Parser {
  Dictionary dictionary = nullptr;
  Parse_Options options = nullptr;

  // The parse of `prefix + text`, or one with every word unlinked when there is none; the words'
  // offsets are bytes of the piece. Words are left unlinked only when linking all fails before
  // `deadline`: that search costs the most.
  Parse parse(const std::string& prefix, const SpacedPiece& piece,
              Clock::time_point deadline) const {
    const std::string input = prefix + piece.text;
    Parse parse;
    Sentence sentence = sentence_create(input.c_str(), dictionary);
    if (sentence == nullptr) return parse;
    sentence_split(sentence, options);
    parse_options_set_min_null_count(options, 0);
    parse_options_set_max_null_count(options, 0);
    int linkages = sentence_parse(sentence, options);
    if (linkages <= 0 && Clock::now() < deadline) {
      parse_options_set_min_null_count(options, 1);
      parse_options_set_max_null_count(options, sentence_length(sentence));
      linkages = sentence_parse(sentence, options);
    }
    Linkage linkage = linkages > 0 ? linkage_create(0, sentence, options) : nullptr;
    if (linkage == nullptr) {
      sentence_delete(sentence);
      parse.unlinked = 1 << 20;
      return parse;
    }
    parse.unlinked = sentence_null_count(sentence);
    const size_t word_count = linkage_get_num_words(linkage);
    for (size_t w = 0; w < word_count; ++w) {
      ParsedWord word;
      word.word = linkage_get_word(linkage, w);
      const size_t start = linkage_get_word_byte_start(linkage, w);
      const size_t end = linkage_get_word_byte_end(linkage, w);
      word.in_text = start >= prefix.size() && end > start && end <= input.size();
      if (word.in_text) {
        word.byte_start = piece.source_byte[start - prefix.size()];
        word.byte_end = piece.source_byte[end - 1 - prefix.size()] + 1;
      }
      parse.words.push_back(std::move(word));
    }
    const size_t link_count = linkage_get_num_links(linkage);
    for (size_t l = 0; l < link_count; ++l) {
      if (!is_modifier_link(linkage_get_link_label(linkage, l))) continue;
      const size_t left = linkage_get_link_lword(linkage, l);
      const size_t right = linkage_get_link_rword(linkage, l);
      if (left < right && right < word_count) parse.modifier_links.emplace_back(left, right);
    }
    linkage_delete(linkage);
    sentence_delete(sentence);
    return parse;
  }
};

PhraseParser::PhraseParser() : parser_(std::make_unique<Parser>()) {
  route_link_grammar_messages();
  link_grammar_messages.clear();
  parser_->dictionary = dictionary_create_lang("en");
  if (parser_->dictionary == nullptr) {
    throw model_error("cannot load Link Grammar's English dictionary (" +
                      message_line(link_grammar_messages) +
                      "); install link-grammar-dictionaries-en");
  }
  parser_->options = parse_options_create();
  parse_options_set_verbosity(parser_->options, 0);
  // Seconds of CPU time for one call, which Link Grammar checks now and then; pieces keep each
  // call short, and noun_phrases' own clock bounds the sum.
  parse_options_set_max_parse_time(parser_->options, 1);
  parse_options_set_linkage_limit(parser_->options, 100);
}

PhraseParser::~PhraseParser() {
  if (parser_->options != nullptr) parse_options_delete(parser_->options);
  if (parser_->dictionary != nullptr) dictionary_delete(parser_->dictionary);
}

std::vector<Phrase> PhraseParser::noun_phrases(const std::string& text) const {
  text::decode_utf8(text);  // throws for text that is not UTF-8
  if (text.size() > kMaxPhraseTextBytes) {
    throw input_error("the text to find phrases in is " + std::to_string(text.size()) +
                      " bytes; at most " + std::to_string(kMaxPhraseTextBytes) + " are parsed");
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw input_error("the text to find phrases in is empty");
  }

  std::lock_guard<std::mutex> lock(mutex_);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(kPhraseParseSeconds));
  Parse parse;
  for (const std::string_view piece : phrase_parse_pieces(text)) {
    if (Clock::now() >= deadline) break;
    SpacedPiece spaced = spaced_piece(piece);
    Parse piece_parse = parser_->parse("", spaced, deadline);
    if (piece_parse.unlinked > 0 && Clock::now() < deadline) {
      spaced.text = lower_first_determiner(spaced.text);
      Parse as_object = parser_->parse("there is ", spaced, deadline);
      if (as_object.unlinked < piece_parse.unlinked) piece_parse = std::move(as_object);
    }
    append_piece(parse, piece_parse, static_cast<size_t>(piece.data() - text.data()));
  }

  const size_t count = parse.words.size();
  std::vector<bool> modifies(count, false);
  for (const auto& [left, right] : parse.modifier_links) modifies[left] = true;

  std::vector<Phrase> phrases;
  size_t previous_end = 0;
  for (size_t head = 0; head < count; ++head) {
    const ParsedWord& head_word = parse.words[head];
    if (!head_word.in_text || modifies[head] || !is_noun_word(head_word.word)) continue;
    // The head and every word joined to it leftwards by modifier links, transitively.
    std::vector<bool> in_phrase(count, false);
    in_phrase[head] = true;
    for (bool grew = true; grew;) {
      grew = false;
      for (const auto& [left, right] : parse.modifier_links) {
        if (in_phrase[right] && !in_phrase[left] && parse.words[left].in_text) {
          in_phrase[left] = grew = true;
        }
      }
    }
    size_t first = head;
    for (size_t w = 0; w < head; ++w) {
      if (in_phrase[w]) {
        first = w;
        break;
      }
    }
    const size_t byte_start = parse.words[first].byte_start;
    const size_t byte_end = head_word.byte_end;
    if (!phrases.empty() && byte_start < previous_end) continue;
    previous_end = byte_end;
    phrases.push_back({text.substr(byte_start, byte_end - byte_start),
                       {code_points_before(text, byte_start), code_points_before(text, byte_end)}});
  }
  return phrases;
}

std::vector<std::string_view> phrase_parse_pieces(std::string_view text) {
  const std::vector<Token> tokens = tokens_of(text);
  if (tokens.size() <= kMaxParsedTokens) return {text};

  std::vector<std::string_view> pieces;
  for (size_t first = 0; first < tokens.size();) {
    const size_t reach = std::min(kMaxParsedTokens, tokens.size() - first);
    size_t count = reach;
    if (first + reach < tokens.size()) {
      int best = 0;
      for (size_t n = 1; n <= reach; ++n) {
        const int strength = tokens[first + n - 1].cut_strength;
        if (strength > 0 && strength >= best) {
          best = strength;
          count = n;
        }
      }
    }
    const size_t start = tokens[first].start;
    pieces.push_back(text.substr(start, tokens[first + count - 1].end - start));
    first += count;
  }
  return pieces;
}

PhrasePrompts phrase_prompts(const PhraseParser& parser, const std::string& sentence,
                             const std::string& where) {
  PhrasePrompts prompts;
  prompts.texts.push_back(sentence);
  prompts.spans.emplace_back();
  std::vector<Phrase> phrases;
  try {
    phrases = parser.noun_phrases(sentence);
  } catch (const Error& error) {
    throw Error(error.category(), where + ": " + error.what());
  }
  for (Phrase& phrase : phrases) {
    prompts.texts.push_back(std::move(phrase.text));
    prompts.spans.emplace_back(phrase.span);
  }
  return prompts;
}

}  // namespace clipxai
