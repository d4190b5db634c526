#include "text_cleanup.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iterator>
#include <map>
#include <string_view>

#include "clipxai/error.h"
#include "html_entities.h"

namespace clipxai::text {
namespace {

constexpr char32_t kReplacementChar = 0xFFFD;

// Length of the well-formed UTF-8 sequence at `pos` (its code point in `code_point`), or 0.
int utf8_sequence_at(const std::string& s, size_t pos, char32_t* code_point) {
  auto byte_at = [&](size_t i) -> unsigned {
    return i < s.size() ? static_cast<unsigned char>(s[i]) : 0x100u;
  };
  const unsigned lead = byte_at(pos);
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  // The allowed range of the second byte excludes overlong forms, surrogates and > U+10FFFF.
  unsigned low = 0x80, high = 0xBF;
  int length = 0;
  char32_t value = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    value = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    value = lead & 0x0F;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    value = lead & 0x07;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  for (int i = 1; i < length; ++i) {
    const unsigned byte = byte_at(pos + i);
    if (byte < low || byte > high) return 0;
    low = 0x80;
    high = 0xBF;
    value = (value << 6) | (byte & 0x3F);
  }
  *code_point = value;
  return length;
}

// `text` with every byte that is not part of well-formed UTF-8 written as \xNN.
std::string printable(const std::string& text) {
  std::string out;
  for (size_t pos = 0; pos < text.size();) {
    char32_t code_point;
    const int length = utf8_sequence_at(text, pos, &code_point);
    if (length > 0) {
      out.append(text, pos, length);
      pos += length;
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", static_cast<unsigned char>(text[pos]));
      out += escaped;
      ++pos;
    }
  }
  return out;
}

icu::UnicodeString to_icu(const std::u32string& text) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()),
                                       static_cast<int32_t>(text.size()));
}

std::u32string from_icu(const icu::UnicodeString& text) {
  std::u32string out;
  for (int32_t i = 0; i < text.length(); i = text.moveIndex32(i, 1)) {
    out.push_back(static_cast<char32_t>(text.char32At(i)));
  }
  return out;
}

using NormalizerInstance = const icu::Normalizer2* (*)(UErrorCode&);

std::u32string normalize(const std::u32string& text, NormalizerInstance instance) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = instance(status);
  icu::UnicodeString normalized;
  if (U_SUCCESS(status)) normalized = normalizer->normalize(to_icu(text), status);
  if (U_FAILURE(status)) {
    throw Error(ErrorCategory::Internal,
                std::string("ICU Unicode normalisation failed: ") + u_errorName(status));
  }
  return from_icu(normalized);
}

// Python's str.lower() / str.upper(): full, locale-independent case mappings (final sigma too).
std::u32string lower(const std::u32string& text) {
  return from_icu(to_icu(text).toLower(icu::Locale::getRoot()));
}
std::u32string upper(const std::u32string& text) {
  return from_icu(to_icu(text).toUpper(icu::Locale::getRoot()));
}

bool is_ascii_alnum(char32_t c) {
  return (c >= U'0' && c <= U'9') || (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
}
bool is_ascii_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_ascii_hex_digit(char32_t c) {
  return is_ascii_digit(c) || (c >= U'a' && c <= U'f') || (c >= U'A' && c <= U'F');
}
int hex_value(char32_t c) {
  if (is_ascii_digit(c)) return static_cast<int>(c - U'0');
  return static_cast<int>((c | 0x20) - U'a') + 10;
}

std::u32string ascii_case(std::u32string text, bool to_upper) {
  for (char32_t& c : text) {
    if (to_upper && c >= U'a' && c <= U'z') c -= 0x20;
    if (!to_upper && c >= U'A' && c <= U'Z') c += 0x20;
  }
  return text;
}

// ---- Python's html.unescape ----

const char* find_named_entity(const std::u32string& name) {
  const std::string key = encode_utf8(name);
  const auto& table = html::named_entities();
  const auto found = std::lower_bound(
      table.begin(), table.end(), key,
      [](const html::NamedEntity& entity, const std::string& k) { return entity.name < k; });
  return found != table.end() && key == found->name ? found->value : nullptr;
}

std::u32string numeric_reference(uint32_t code) {
  const auto& replacements = html::numeric_replacements();
  const auto replaced = std::lower_bound(
      replacements.begin(), replacements.end(), code,
      [](const std::pair<char32_t, char32_t>& entry, uint32_t c) { return entry.first < c; });
  if (replaced != replacements.end() && replaced->first == code) {
    return std::u32string(1, replaced->second);
  }
  if ((code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return {kReplacementChar};
  const auto& dropped = html::dropped_numeric_codepoints();
  if (std::binary_search(dropped.begin(), dropped.end(), static_cast<char32_t>(code))) return {};
  return std::u32string(1, static_cast<char32_t>(code));
}

// Matches Python's charref pattern `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` right
// after the '&' at `start`. On a match, sets the length matched after the '&' and the decoded text.
bool match_character_reference(const std::u32string& s, size_t start, size_t* length,
                               std::u32string* decoded) {
  const size_t n = s.size();
  if (start < n && s[start] == U'#') {
    const bool hex = start + 1 < n && (s[start + 1] == U'x' || s[start + 1] == U'X');
    size_t pos = start + (hex ? 2 : 1);
    const size_t digits_start = pos;
    uint32_t code = 0;
    while (pos < n && (hex ? is_ascii_hex_digit(s[pos]) : is_ascii_digit(s[pos]))) {
      // Saturate: any value past U+10FFFF decodes the same.
      code = std::min<uint32_t>(code * (hex ? 16 : 10) + hex_value(s[pos]), 0x110000);
      ++pos;
    }
    if (pos == digits_start) return false;
    if (pos < n && s[pos] == U';') ++pos;
    *length = pos - start;
    *decoded = numeric_reference(code);
    return true;
  }
  static constexpr std::u32string_view kNameStops = U"\t\n\f <&#;";
  size_t pos = start;
  while (pos < n && pos - start < 32 && kNameStops.find(s[pos]) == std::u32string_view::npos) {
    ++pos;
  }
  if (pos == start) return false;
  if (pos < n && s[pos] == U';') ++pos;
  *length = pos - start;
  const std::u32string name = s.substr(start, pos - start);
  if (const char* value = find_named_entity(name)) {
    *decoded = decode_utf8(value);
    return true;
  }
  // The longest known prefix of at least two characters (legacy entities without ';').
  for (size_t prefix = name.size() - 1; prefix > 1; --prefix) {
    if (const char* value = find_named_entity(name.substr(0, prefix))) {
      *decoded = decode_utf8(value) + name.substr(prefix);
      return true;
    }
  }
  *decoded = U"&" + name;
  return true;
}

// ---- ftfy.fix_text: the fixes that apply to text that is already well-formed Unicode ----

// ftfy.fixes.unescape_html: only `&name;` and `&#...;` forms, plus entities whose lower-case name
// was upper-cased ("&EACUTE;" -> "É").
std::u32string ftfy_unescape_html(const std::u32string& s) {
  std::u32string out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t amp = s.find(U'&', pos);
    if (amp == std::u32string::npos) break;
    out.append(s, pos, amp - pos);
    const size_t name_start = amp + 1 + (amp + 1 < s.size() && s[amp + 1] == U'#' ? 1 : 0);
    size_t name_end = name_start;
    while (name_end < s.size() && is_ascii_alnum(s[name_end])) ++name_end;
    const size_t name_length = name_end - name_start;
    if (name_length < 1 || name_length > 24 || name_end >= s.size() || s[name_end] != U';') {
      out += U'&';
      pos = amp + 1;
      continue;
    }
    const std::u32string entity = s.substr(amp, name_end + 1 - amp);
    const std::u32string name = entity.substr(1);  // with its ';'
    std::u32string decoded = entity;
    if (name[0] == U'#') {
      // A numeric reference counts only when it decodes completely, ';' included.
      const std::u32string unescaped = html_unescape(entity);
      if (unescaped.find(U';') == std::u32string::npos) decoded = unescaped;
    } else if (const char* value = find_named_entity(name)) {
      decoded = decode_utf8(value);
    } else if (const std::u32string lower_name = ascii_case(name, false);
               ascii_case(lower_name, true) == name && lower_name != name &&
               html_unescape(entity) == entity) {
      if (const char* value = find_named_entity(lower_name)) decoded = upper(decode_utf8(value));
    }
    out += decoded;
    pos = name_end + 1;
  }
  out.append(s, pos, std::u32string::npos);
  return out;
}

// ftfy.fixes.fix_c1_controls: C1 controls are Windows-1252 characters decoded as Latin-1.
std::u32string fix_c1_controls(std::u32string s) {
  for (char32_t& c : s) {
    if (c >= 0x80 && c <= 0x9F) c = numeric_reference(c)[0];
  }
  return s;
}

// ftfy.fixes.fix_latin_ligatures with the table of ftfy before 5.2: typographic ligatures only.
// Later versions also split the digraphs Ǆ..ǌ and ŉ, but the reference's own outputs keep them
// ("ǅ" tokenizes as "ǆ"), so the tokenizer CLIP is used with does not.
std::u32string fix_latin_ligatures(const std::u32string& s) {
  static const std::map<char32_t, std::u32string> kLigatures = {
      {U'Ĳ', U"IJ"},  {U'ĳ', U"ij"},  {U'ﬀ', U"ff"}, {U'ﬁ', U"fi"}, {U'ﬂ', U"fl"},
      {U'ﬃ', U"ffi"}, {U'ﬄ', U"ffl"}, {U'ﬅ', U"ſt"}, {U'ﬆ', U"st"},
  };
  std::u32string out;
  for (char32_t c : s) {
    const auto found = kLigatures.find(c);
    if (found != kLigatures.end()) {
      out += found->second;
    } else {
      out += c;
    }
  }
  return out;
}

// ftfy.fixes.fix_character_width: fullwidth/halfwidth forms (U+FF01..U+FFEF) to their NFKC form,
// and the ideographic space to a space.
std::u32string fix_character_width(const std::u32string& s) {
  std::u32string out;
  for (char32_t c : s) {
    if (c == 0x3000) {
      out += U' ';
    } else if (c >= 0xFF01 && c < 0xFFF0) {
      out += normalize(std::u32string(1, c), &icu::Normalizer2::getNFKCInstance);
    } else {
      out += c;
    }
  }
  return out;
}

// ftfy.fixes.uncurl_quotes, like the ligatures as before ftfy 5.2 (which added U+02BC).
std::u32string uncurl_quotes(std::u32string s) {
  for (char32_t& c : s) {
    if (c >= 0x2018 && c <= 0x201B) c = U'\'';
    if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
  return s;
}

// ftfy.fixes.remove_terminal_escapes: "\033[" (digits or ';')* letter.
std::u32string remove_terminal_escapes(const std::u32string& s) {
  std::u32string out;
  size_t pos = 0;
  while (pos < s.size()) {
    if (s[pos] == 0x1B && pos + 1 < s.size() && s[pos + 1] == U'[') {
      size_t end = pos + 2;
      while (end < s.size() && (s[end] == U';' || u_charType(s[end]) == U_DECIMAL_DIGIT_NUMBER)) {
        ++end;
      }
      if (end < s.size() && s[end] < 0x80 && std::isalpha(static_cast<int>(s[end]))) {
        pos = end + 1;
        continue;
      }
    }
    out += s[pos++];
  }
  return out;
}

// ftfy.fixes.remove_control_chars (ftfy.chardata.CONTROL_CHARS).
std::u32string remove_control_chars(const std::u32string& s) {
  auto is_removed = [](char32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
  };
  std::u32string out;
  std::copy_if(s.begin(), s.end(), std::back_inserter(out),
               [&](char32_t c) { return !is_removed(c); });
  return out;
}

// ftfy.fix_and_explain with the default configuration: the fixes in ftfy's order, repeated until
// the text no longer changes. The mojibake repairs (fix_encoding and its helpers) are not ported:
// they only change text that was decoded with the wrong codec.
std::u32string fix_segment(std::u32string s, bool unescape_html) {
  while (true) {
    const std::u32string before = s;
    if (unescape_html) s = ftfy_unescape_html(s);
    s = fix_c1_controls(std::move(s));
    s = fix_latin_ligatures(s);
    s = fix_character_width(s);
    s = uncurl_quotes(std::move(s));
    // fix_line_breaks is left out: it only turns line breaks into "\n", and all of them end up as
    // one space after the whitespace clean-up.
    s = remove_terminal_escapes(s);
    s = remove_control_chars(s);
    s = normalize(s, &icu::Normalizer2::getNFCInstance);
    if (s == before) return s;
  }
}

// ftfy.fix_text: fixes line by line; HTML is unescaped only until a line contains '<' (ftfy's
// unescape_html="auto" takes such text for HTML source).
std::u32string fix_text(const std::u32string& text) {
  std::u32string out;
  bool unescape_html = true;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t newline = text.find(U'\n', pos);
    const size_t end = newline == std::u32string::npos ? text.size() : newline + 1;
    const std::u32string segment = text.substr(pos, end - pos);
    if (segment.find(U'<') != std::u32string::npos) unescape_html = false;
    out += fix_segment(segment, unescape_html);
    pos = end;
  }
  return out;
}

// Python's re.sub(r"\s+", " ", text).strip().
std::u32string collapse_whitespace(const std::u32string& s) {
  std::u32string out;
  bool pending_space = false;
  for (char32_t c : s) {
    if (is_space(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out += U' ';
      pending_space = false;
      out += c;
    }
  }
  return out;
}

}  // namespace

std::u32string decode_utf8(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    char32_t code_point;
    const int length = utf8_sequence_at(text, pos, &code_point);
    if (length == 0) {
      throw input_error("prompt \"" + printable(text) + "\" is not valid UTF-8 (byte " +
                        std::to_string(pos) + ")");
    }
    out.push_back(code_point);
    pos += length;
  }
  return out;
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

std::u32string html_unescape(const std::u32string& text) {
  std::u32string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t amp = text.find(U'&', pos);
    if (amp == std::u32string::npos) break;
    out.append(text, pos, amp - pos);
    size_t length = 0;
    std::u32string decoded;
    if (match_character_reference(text, amp + 1, &length, &decoded)) {
      out += decoded;
      pos = amp + 1 + length;
    } else {
      out += U'&';
      pos = amp + 1;
    }
  }
  out.append(text, pos, std::u32string::npos);
  return out;
}

std::u32string clean(const std::u32string& text) {
  const std::u32string fixed = fix_text(text);
  return lower(collapse_whitespace(html_unescape(html_unescape(fixed))));
}

bool is_letter(char32_t c) { return (U_GET_GC_MASK(c) & U_GC_L_MASK) != 0; }

bool is_number(char32_t c) { return (U_GET_GC_MASK(c) & U_GC_N_MASK) != 0; }

bool is_space(char32_t c) {
  if (u_charType(c) == U_SPACE_SEPARATOR) return true;
  switch (u_charDirection(c)) {
    case U_WHITE_SPACE_NEUTRAL:
    case U_BLOCK_SEPARATOR:
    case U_SEGMENT_SEPARATOR:
      return true;
    default:
      return false;
  }
}

}  // namespace clipxai::text
