// The tables behind Python's html.unescape, which CLIP's reference tokenizer applies to every
// text. Generated from Python's own html module by scripts/generate_html_entities.py so that the
// C++ clean-up decodes exactly the entities the reference decodes.
#pragma once

#include <utility>
#include <vector>

namespace clipxai::html {

// One HTML5 named character reference. `name` is spelled as in Python's html.entities.html5:
// without the '&', with the ';' when the entity has one (legacy names like "amp" exist both ways).
struct NamedEntity {
  const char* name;
  const char* value;  // UTF-8
};

// Sorted by name (byte order).
const std::vector<NamedEntity>& named_entities();

// Numeric references whose code point is replaced (NUL, CR and the C1 range, which browsers read
// as Windows-1252), sorted by code point.
const std::vector<std::pair<char32_t, char32_t>>& numeric_replacements();

// Numeric references that decode to nothing (other controls and non-characters), sorted.
const std::vector<char32_t>& dropped_numeric_codepoints();

}  // namespace clipxai::html
