// The static HTML report of a run (DIR/report.html next to a run's --out tree).
//
// One self-contained page, no JavaScript, nothing fetched from the network (a Content Security
// Policy forbids it): the run's model and method, then per image (class "result") its size and
// crop and, per prompt (class "prompt"), the overlay (an <img class="overlay"> linked by a
// relative URL from the report's directory, so the folder can be moved or served as a whole),
// probability, logit, peak, and the tokens as shaded words (class "token", background alpha
// proportional to the token's relevance, the most relevant token fully shaded); then the errors
// (class "error"). All text from the document — file names, prompts, messages — is HTML-escaped.
//
// `document` is the run's JSON document (schema in report.h). Overlay paths in it are taken
// relative to the current directory, as the run that wrote them recorded them; prompts without
// an overlay show a note instead. Fields missing from the document show as "–".
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace clipxai {

// The page's HTML, for a report that will live in `report_directory`.
std::string html_report(const nlohmann::json& document, const std::string& report_directory);

// Writes html_report to `path` atomically. Throws Error(Input) when it cannot be written.
void write_html_report(const std::string& path, const nlohmann::json& document);

}  // namespace clipxai
