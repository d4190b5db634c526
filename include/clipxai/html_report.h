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
// The page is made from the run's JSON document (schema in report.h). Overlay paths in it are
// taken relative to the current directory, as the run that wrote them recorded them; prompts
// without an overlay show a note instead. Fields missing from the document show as "–".
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

namespace clipxai {

using RecordVisitor = std::function<void(const nlohmann::json& record)>;
// Calls the visitor with each result record (`results`) or error record of a run, in order.
using RunRecords = std::function<void(bool results, const RecordVisitor& visit)>;

// Streams the page, for a report that will live in `report_directory`, holding one record in
// memory at a time: `header` is the document's other members (its "model" and "method"),
// `result_count` and `error_count` how many records `records` gives of each kind.
void write_html_report(std::ostream& page, const nlohmann::json& header, size_t result_count,
                       size_t error_count, const RunRecords& records,
                       const std::string& report_directory);

// The page of a document held in memory, with its "results" and "errors" arrays.
std::string html_report(const nlohmann::json& document, const std::string& report_directory);

}  // namespace clipxai
