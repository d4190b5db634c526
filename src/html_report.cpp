#include "clipxai/html_report.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace clipxai {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kMissing = "\u2013";

constexpr const char* kHead = R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clipxai report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h2 { font-size: 1.05em; margin: 0 0 0.3em; word-break: break-all; }
.run, .size { color: #555; }
.result { border-top: 1px solid #ccc; padding: 0.8em 0; }
.prompts { display: flex; flex-wrap: wrap; gap: 1em; }
.prompt { margin: 0; width: 260px; }
.overlay { max-width: 256px; max-height: 256px; display: block; }
.text { font-weight: 600; word-break: break-word; }
.numbers { font-variant-numeric: tabular-nums; }
.token { padding: 0 2px; margin-right: 2px; border-radius: 2px; }
.note { color: #a40; }
.error code { word-break: break-all; }
</style>
</head>
<body>
<h1>clipxai report</h1>
)";

std::string escape(const std::string& text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

// A relative URL path: every byte but unreserved characters and '/' percent-encoded, so spaces,
// '#', '?', '%' and non-ASCII names all reach the file system unchanged.
std::string url_path(const fs::path& path) {
  static const char* kHex = "0123456789ABCDEF";
  std::string url;
  for (unsigned char c : path.generic_string()) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      url += static_cast<char>(c);
    } else {
      url += '%';
      url += kHex[c >> 4];
      url += kHex[c & 15];
    }
  }
  return url;
}

// The field `key` of `object`, null when `object` is not an object or lacks it: the page shows
// whatever a partial or older document holds rather than failing.
json field(const json& object, const char* key) {
  if (!object.is_object()) return json();
  const auto value = object.find(key);
  return value == object.end() ? json() : *value;
}

// Scalars as text: strings as they are, numbers and the rest as JSON.
std::string text_of(const json& value) {
  if (value.is_null()) return kMissing;
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string formatted(const json& object, const char* key, const char* format, double scale = 1) {
  const json value = field(object, key);
  if (!value.is_number()) return kMissing;
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value.get<double>() * scale);
  return buffer;
}

std::string string_field(const json& object, const char* key) {
  const json value = field(object, key);
  return value.is_string() ? value.get<std::string>() : kMissing;
}

// "key value · key value" over an object's scalar fields, for the model and method headers.
std::string scalar_fields(const json& object) {
  std::string text;
  if (!object.is_object()) return text;
  for (const auto& [key, value] : object.items()) {
    if (value.is_structured()) continue;
    if (!text.empty()) text += " \u00b7 ";
    text += escape(key) + " " + escape(text_of(value));
  }
  return text;
}

void write_tokens(const json& tokens, std::ostream& page) {
  if (!tokens.is_array() || tokens.empty()) return;
  double strongest = 0;
  for (const json& token : tokens) {
    const json relevance = field(token, "relevance");
    if (relevance.is_number()) strongest = std::max(strongest, relevance.get<double>());
  }
  page << "<div class=\"tokens\">";
  for (const json& token : tokens) {
    const json relevance = field(token, "relevance");
    const double value = relevance.is_number() ? relevance.get<double>() : 0;
    const double alpha = strongest > 0 ? std::clamp(value / strongest, 0.0, 1.0) : 0;
    char style[80];
    std::snprintf(style, sizeof style, "background-color: rgba(255, 140, 0, %.3f)", alpha);
    page << "<span class=\"token\" style=\"" << style << "\" title=\"relevance "
         << escape(text_of(relevance)) << "\">" << escape(string_field(token, "token"))
         << "</span>";
  }
  page << "</div>";
}

void write_prompt(const json& prompt, const fs::path& report_directory, std::ostream& page) {
  const std::string text = string_field(prompt, "text");
  page << "<figure class=\"prompt\">";
  const json overlay = field(prompt, "overlay");
  if (overlay.is_string()) {
    const fs::path target = fs::absolute(overlay.get<std::string>()).lexically_normal();
    page << "<img class=\"overlay\" loading=\"lazy\" src=\""
         << escape(url_path(target.lexically_relative(report_directory))) << "\" alt=\"overlay for "
         << escape(text) << "\">";
  } else {
    page << "<p class=\"note\">no overlay saved</p>";
  }
  page << "<figcaption><div class=\"text\">" << escape(text) << "</div><div class=\"numbers\">"
       << "probability " << formatted(prompt, "probability", "%.1f%%", 100) << " \u00b7 logit "
       << formatted(prompt, "logit", "%.3f");
  const json peak = field(prompt, "peak");
  if (peak.is_array() && peak.size() == 2) {
    page << " \u00b7 peak (" << escape(text_of(peak[0])) << ", " << escape(text_of(peak[1])) << ")";
  }
  page << "</div>";
  if (field(prompt, "truncated") == true) {
    page << "<div class=\"note\">prompt truncated to the model's context</div>";
  }
  write_tokens(field(prompt, "tokens"), page);
  page << "</figcaption></figure>\n";
}

void write_result(const json& result, const fs::path& report_directory, std::ostream& page) {
  page << "<section class=\"result\">\n<h2>" << escape(string_field(result, "image"))
       << "</h2>\n<p class=\"size\">" << formatted(result, "width", "%.0f") << " \u00d7 "
       << formatted(result, "height", "%.0f") << " px";
  const json crop = field(result, "crop");
  if (crop.is_object()) {
    page << " \u00b7 model's view: " << formatted(crop, "width", "%.0f") << " \u00d7 "
         << formatted(crop, "height", "%.0f") << " at (" << formatted(crop, "x", "%.0f") << ", "
         << formatted(crop, "y", "%.0f") << ")";
  }
  page << "</p>\n<div class=\"prompts\">\n";
  const json prompts = field(result, "prompts");
  for (const json& prompt : prompts) {
    if (prompt.is_object()) write_prompt(prompt, report_directory, page);
  }
  page << "</div>\n</section>\n";
}

void write_error(const json& error, std::ostream& page) {
  page << "<li class=\"error\">";
  if (!error.is_object()) {
    page << escape(text_of(error)) << "</li>\n";
    return;
  }
  const std::string image = string_field(error, "image");
  page << "<code>" << escape(image) << "</code>";
  for (const auto& [key, value] : error.items()) {
    if (key != "image") page << " \u00b7 " << escape(key) << ": " << escape(text_of(value));
  }
  page << "</li>\n";
}

}  // namespace

void write_html_report(std::ostream& page, const json& header, size_t result_count,
                       size_t error_count, const RunRecords& records,
                       const std::string& report_directory) {
  fs::path directory = fs::absolute(report_directory).lexically_normal();
  // "out/" normalises to "out/" with an empty last element, which lexically_relative would
  // count as one more level.
  if (!directory.has_filename()) directory = directory.parent_path();
  page << kHead;
  page << "<p class=\"run\">model: " << scalar_fields(field(header, "model"))
       << "</p>\n<p class=\"run\">method: " << scalar_fields(field(header, "method"))
       << "</p>\n<p class=\"run\">" << result_count << " images explained, " << error_count
       << " errors</p>\n";
  records(true, [&](const json& result) {
    if (result.is_object()) write_result(result, directory, page);
  });
  if (error_count > 0) {
    page << "<section class=\"errors\">\n<h2>Errors</h2>\n<ul>\n";
    records(false, [&](const json& error) { write_error(error, page); });
    page << "</ul>\n</section>\n";
  }
  page << "</body>\n</html>\n";
}

std::string html_report(const json& document, const std::string& report_directory) {
  const json results = field(document, "results");
  const json errors = field(document, "errors");
  std::ostringstream page;
  write_html_report(
      page, document, results.size(), errors.size(),
      [&](bool want_results, const RecordVisitor& visit) {
        for (const json& record : want_results ? results : errors) visit(record);
      },
      report_directory);
  return page.str();
}

}  // namespace clipxai
