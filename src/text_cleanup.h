// Text clean-up of CLIP's reference tokenizer (simple_tokenizer.py), on Unicode code points:
//   ftfy.fix_text (the fixes that apply to well-formed text) -> html.unescape twice -> strip
//   -> collapse whitespace runs to one space -> str.lower().
// Character classes follow Python's definitions, computed with ICU.
#pragma once

#include <string>

namespace clipxai::text {

// Code points of UTF-8 `text`. Throws Error(Input) naming the prompt and the offending byte
// offset when `text` is not valid UTF-8 (overlong forms, surrogates, truncated sequences).
std::u32string decode_utf8(const std::string& text);
std::string encode_utf8(const std::u32string& text);

// The text after the reference clean-up, ready for pre-tokenising.
std::u32string clean(const std::u32string& text);

// Python's html.unescape.
std::u32string html_unescape(const std::u32string& text);

// Character classes of the reference's pre-tokenising regex.
bool is_letter(char32_t c);  // \p{L}
bool is_number(char32_t c);  // \p{N}
bool is_space(char32_t c);   // Python's str.isspace / \s

}  // namespace clipxai::text
