// Noun phrases of a sentence, as spaCy's `doc.noun_chunks` gives them, from Link Grammar's parse
// (CMU's English link parser, Debian's liblink-grammar).
//
// A phrase is a noun with the words that modify it from the left: its determiners ("a", "the",
// "their", "both"), adjectives, adverbs of those adjectives ("very"), numbers, noun modifiers
// ("desktop computer", "school uniform") and proper-name series ("the London Eye", "the river
// Thames"), possessives included ("the cat's red ball"). In Link Grammar's terms: the noun and
// every word joined to it leftwards, directly or in a chain, by a D*, A, AN, AJ, G, GN, YS, YP,
// EA, NN or L link. A noun that itself modifies a noun to its right is part of that noun's phrase,
// not a phrase of its own; coordinated nouns ("a girl and a boy", "Hermione, Harry and Ron") are
// separate phrases; pronouns ("we", "it") are not phrases; phrases never overlap (spaCy's rule:
// a phrase starting inside the previous one is dropped). Phrases come in sentence order.
//
// Captions are often not sentences ("a dog sitting on a red couch"), and Link Grammar leaves
// some of their words unlinked. When the text as given parses with unlinked words, it is parsed
// again as the object of "there is ..." and the parse with fewer unlinked words is used;
// unlinked words belong to no phrase.
//
// Link Grammar's parse time grows steeply with a text's length, above all when words must be
// left unlinked. So a text of more than kMaxParsedTokens tokens is parsed in pieces
// (phrase_parse_pieces), one after another, until kPhraseParseSeconds have passed; the pieces
// not reached by then give no phrases, and once that time is up no parse leaves words unlinked.
// Each piece is cut at a sentence's end where one is in reach, so a text of short sentences
// parses as those sentences. Link Grammar reads each piece as its tokens joined by single spaces:
// its own tokenizer, left to split punctuation off words, fails an assertion and ends the
// process on strings such as "a dog *)*********7l".
//
// Offsets are in Unicode code points of the text (what Python's str and spaCy's start_char
// count), [start, end); `text` is the phrase's exact substring.
//
// Link Grammar needs a UTF-8 character type: when the process's LC_CTYPE is not UTF-8, loading
// the dictionary switches LC_CTYPE to C.UTF-8 (the executables set it first, see main.cpp).
// Its messages go to no stream; a dictionary that cannot be loaded is an Error(Model) quoting
// them. A PhraseParser may be used from several threads (parses take turns).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clipxai {

struct TextSpan {
  size_t start = 0;  // first code point
  size_t end = 0;    // one past the last
};

struct Phrase {
  std::string text;
  TextSpan span;
};

// Longer texts are refused.
inline constexpr size_t kMaxPhraseTextBytes = 1000;

// A token here is a run of letters, digits, apostrophes, hyphens and non-ASCII bytes, or any
// other byte alone that is not a blank (a space or a control byte): about the words Link Grammar
// sees.
inline constexpr size_t kMaxParsedTokens = 24;
inline constexpr double kPhraseParseSeconds = 2.0;

// The pieces of `text` that are parsed one at a time: `text` itself when it has at most
// kMaxParsedTokens tokens; else runs of at most that many tokens (from a token's first byte to a
// token's last), each ending at the last sentence end in reach (one of ".!?;" before a blank, or
// a line break), else at the last comma or colon before a blank, else after kMaxParsedTokens
// tokens.
std::vector<std::string_view> phrase_parse_pieces(std::string_view text);

class PhraseParser {
 public:
  // Loads Link Grammar's English dictionary (Debian: /usr/share/link-grammar/en).
  PhraseParser();
  ~PhraseParser();
  PhraseParser(const PhraseParser&) = delete;
  PhraseParser& operator=(const PhraseParser&) = delete;

  // Throws Error(Input) for text that is not UTF-8, is empty or blank, or exceeds
  // kMaxPhraseTextBytes. A text without nouns has no phrases.
  std::vector<Phrase> noun_phrases(const std::string& text) const;

 private:
  struct Parser;
  std::unique_ptr<Parser> parser_;
  mutable std::mutex mutex_;
};

// A sentence as prompts: the sentence itself first, then each of its noun phrases, with the
// phrases' spans (none for the sentence), as `clipxai explain --phrases` and the server's
// Entities tab explain it. noun_phrases' errors are prefixed with `where` ("--phrases: ...").
struct PhrasePrompts {
  std::vector<std::string> texts;
  std::vector<std::optional<TextSpan>> spans;
};
PhrasePrompts phrase_prompts(const PhraseParser& parser, const std::string& sentence,
                             const std::string& where);

}  // namespace clipxai
