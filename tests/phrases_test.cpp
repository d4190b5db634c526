// Noun phrases (phrases.h) on a table of sentences, the Space's own examples among them, and the
// prompts a sentence becomes.
#include "clipxai/phrases.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "clipxai/error.h"

namespace clipxai {
namespace {

struct PhraseCase {
  std::string sentence;
  std::vector<std::string> phrases;
};

std::vector<std::string> texts(const std::vector<Phrase>& phrases) {
  std::vector<std::string> out;
  for (const Phrase& phrase : phrases) out.push_back(phrase.text);
  return out;
}

const PhraseParser& parser() {
  static const PhraseParser shared;
  return shared;
}

TEST(Phrases, FindTheNounPhrasesOfEachSentence) {
  // Eleven sentences, 924 bytes: Link Grammar cannot link them as one text (it gave no phrase
  // after 15 s), and each parses alone in milliseconds.
  PhraseCase many_sentences;
  for (int i = 0; i < 11; ++i) {
    many_sentences.sentence +=
        "In this image we see Big Ben and the London Eye, on both sides of the river Thames. ";
    for (const char* phrase :
         {"this image", "Big Ben", "the London Eye", "both sides", "the river Thames"}) {
      many_sentences.phrases.push_back(phrase);
    }
  }
  const std::vector<PhraseCase> cases = {
      // The demo's sentence: coordinated nouns apart, the noun modifier kept.
      {"a girl and a boy at a desktop computer", {"a girl", "a boy", "a desktop computer"}},
      // The Space's examples: names in a list, a possessive determiner, proper-name series.
      {"Hermione, Harry and Ron in their school uniform",
       {"Hermione", "Harry", "Ron", "their school uniform"}},
      {"In this image we see Big Ben and the London Eye, on both sides of the river Thames.",
       {"this image", "Big Ben", "the London Eye", "both sides", "the river Thames"}},
      // Captions that are not sentences, parsed as "there is ...".
      {"a man riding a horse on the beach", {"a man", "a horse", "the beach"}},
      {"A dog sitting on a red couch", {"A dog", "a red couch"}},
      // Numbers, adjectives and their adverbs, a possessive phrase as one.
      {"two dogs play with the cat's red ball", {"two dogs", "the cat's red ball"}},
      {"a very big dog", {"a very big dog"}},
      {"New York City skyline", {"New York City skyline"}},
      {"the Eiffel Tower at night", {"the Eiffel Tower", "night"}},
      {"dog", {"dog"}},
      // Pronouns are not phrases.
      {"she holds it", {}},
      // Non-ASCII words: offsets count code points.
      {"A café in Zürich with three small tables", {"A café", "Zürich", "three small tables"}},
      // Over kMaxParsedTokens tokens: parsed a sentence at a time, spans still in the whole text.
      {"In this image we see Big Ben and the London Eye, on both sides of the river Thames. "
       "A girl and a boy sit at a desktop computer.\nTwo dogs play with the cat's red ball",
       {"this image", "Big Ben", "the London Eye", "both sides", "the river Thames", "A girl",
        "a boy", "a desktop computer", "Two dogs", "the cat's red ball"}},
      many_sentences,
  };
  for (const PhraseCase& c : cases) {
    SCOPED_TRACE(c.sentence);
    const std::vector<Phrase> phrases = parser().noun_phrases(c.sentence);
    EXPECT_EQ(texts(phrases), c.phrases);
    // Each span is the phrase's place: code points [start, end) of the sentence.
    std::vector<size_t> byte_of;  // the byte offset of each code point, and of the end
    for (size_t i = 0; i < c.sentence.size(); ++i) {
      if ((static_cast<unsigned char>(c.sentence[i]) & 0xC0) != 0x80) byte_of.push_back(i);
    }
    byte_of.push_back(c.sentence.size());
    size_t previous_end = 0;
    for (const Phrase& phrase : phrases) {
      ASSERT_LT(phrase.span.start, phrase.span.end);
      ASSERT_LT(phrase.span.end, byte_of.size());
      EXPECT_LE(previous_end, phrase.span.start) << "phrases overlap";
      previous_end = phrase.span.end;
      const size_t byte_start = byte_of[phrase.span.start];
      const size_t byte_end = byte_of[phrase.span.end];
      EXPECT_EQ(c.sentence.substr(byte_start, byte_end - byte_start), phrase.text);
    }
  }
}

TEST(Phrases, LongTextsAreParsedInPiecesCutAtTheStrongestBoundaryInReach) {
  struct PiecesCase {
    std::string text;
    std::vector<std::string> pieces;
  };
  const auto words = [](size_t count, const std::string& word) {
    std::string text;
    for (size_t i = 0; i < count; ++i) text += (i == 0 ? "" : " ") + word;
    return text;
  };
  const std::vector<PiecesCase> cases = {
      // Up to kMaxParsedTokens tokens: the text as it is, blanks included.
      {" " + words(kMaxParsedTokens, "dog") + " ", {" " + words(kMaxParsedTokens, "dog") + " "}},
      // No boundary: cut after every kMaxParsedTokens tokens, blanks between pieces dropped.
      {words(kMaxParsedTokens * 2 + 3, "dog"),
       {words(kMaxParsedTokens, "dog"), words(kMaxParsedTokens, "dog"), words(3, "dog")}},
      // A sentence's end beats a later comma; the last sentence end in reach is taken.
      {"a cat. " + words(3, "dog") + "! " + words(5, "dog") + ", " + words(17, "dog"),
       {"a cat. " + words(3, "dog") + "!", words(5, "dog") + ", " + words(17, "dog")}},
      // Else the last comma or colon in reach.
      {words(5, "dog") + ", " + words(5, "cat") + ": " + words(20, "dog"),
       {words(5, "dog") + ", " + words(5, "cat") + ":", words(20, "dog")}},
      // A line break ends a sentence; ? and ; do too.
      {words(10, "dog") + "\n" + words(10, "cat") + "? " + words(10, "dog"),
       {words(10, "dog") + "\n" + words(10, "cat") + "?", words(10, "dog")}},
      {words(10, "dog") + "; " + words(20, "cat"), {words(10, "dog") + ";", words(20, "cat")}},
      // Punctuation is a token of its own even without blanks; apostrophes, hyphens and
      // non-ASCII bytes belong to words.
      {std::string(30, '('), {std::string(kMaxParsedTokens, '('), std::string(6, '(')}},
      // Punctuation inside a word is no boundary.
      {words(10, "dog") + " 3.5 Lon:r oy,d " + words(13, "cat") + ", " + words(5, "dog"),
       {words(10, "dog") + " 3.5 Lon:r oy,d " + words(5, "cat"),
        words(8, "cat") + ", " + words(5, "dog")}},
      {words(9, "Zürich's well-known café"),
       {words(8, "Zürich's well-known café"), "Zürich's well-known café"}},
  };
  for (const PiecesCase& c : cases) {
    SCOPED_TRACE(c.text);
    std::vector<std::string> pieces;
    for (const std::string_view piece : phrase_parse_pieces(c.text)) pieces.emplace_back(piece);
    EXPECT_EQ(pieces, c.pieces);
  }
}

// Link Grammar's tokenizer failed an assertion on these, which ended the process (SIGILL);
// the first is fuzz_explain_form's finding.
TEST(Phrases, PunctuationThatBrokeLinkGrammarsTokenizerParses) {
  const std::vector<std::string> texts_that_crashed = {
      "In this image weutfe Big BenTU F the London Eye, on bol and a oab` t}a "
      "de*****************)****************t_l7d tol and amap=viridis",
      "a dog *)*********7l",
      "(,a,..aa(7l)",
      "*77l*  7**)7 *)*7a)a",
  };
  for (const std::string& text : texts_that_crashed) {
    SCOPED_TRACE(text);
    for (const Phrase& phrase : parser().noun_phrases(text)) {
      EXPECT_LT(phrase.span.start, phrase.span.end);
      EXPECT_LE(phrase.span.end, text.size());
    }
  }
}

TEST(Phrases, ControlBytesAreBlanks) {
  // A NUL no longer ends the text Link Grammar reads.
  EXPECT_EQ(texts(parser().noun_phrases(std::string("two dogs\0and a cat", 18))),
            (std::vector<std::string>{"two dogs", "a cat"}));
}

TEST(Phrases, NonAsciiSpansCountCodePoints) {
  const std::vector<Phrase> phrases =
      parser().noun_phrases("A café in Zürich with three small tables");
  ASSERT_EQ(phrases.size(), 3u);
  EXPECT_EQ(phrases[1].span.start, 10u);
  EXPECT_EQ(phrases[1].span.end, 16u);
  EXPECT_EQ(phrases[2].span.start, 22u);
}

TEST(Phrases, RefuseTextThatCannotBeParsed) {
  struct Refused {
    std::string text;
    std::string message;
  };
  const std::vector<Refused> cases = {
      {"", "is empty"},
      {"   \t", "is empty"},
      {"a \xff dog", "not valid UTF-8"},
      {std::string(kMaxPhraseTextBytes + 1, 'a'), "at most 1000"},
  };
  for (const Refused& c : cases) {
    SCOPED_TRACE(c.text.substr(0, 20));
    try {
      parser().noun_phrases(c.text);
      ADD_FAILURE() << "accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.category(), ErrorCategory::Input);
      EXPECT_NE(std::string(error.what()).find(c.message), std::string::npos) << error.what();
    }
  }
}

TEST(Phrases, ASentenceBecomesItselfThenItsPhrasesAsPrompts) {
  const PhrasePrompts prompts = phrase_prompts(parser(), "a girl and a boy", "--phrases");
  EXPECT_EQ(prompts.texts, (std::vector<std::string>{"a girl and a boy", "a girl", "a boy"}));
  ASSERT_EQ(prompts.spans.size(), 3u);
  EXPECT_FALSE(prompts.spans[0]);
  ASSERT_TRUE(prompts.spans[1] && prompts.spans[2]);
  EXPECT_EQ(prompts.spans[1]->start, 0u);
  EXPECT_EQ(prompts.spans[1]->end, 6u);
  EXPECT_EQ(prompts.spans[2]->start, 11u);
  EXPECT_EQ(prompts.spans[2]->end, 16u);
  try {
    phrase_prompts(parser(), "", "--phrases");
    ADD_FAILURE() << "an empty sentence was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Input);
    EXPECT_EQ(std::string(error.what()), "--phrases: the text to find phrases in is empty");
  }
}

}  // namespace
}  // namespace clipxai
