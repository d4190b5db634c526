#include "clipxai/check.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>

#include "clipxai/atomic_file.h"
#include "clipxai/batch.h"
#include "clipxai/error.h"
#include "clipxai/input_file.h"
#include "clipxai/output.h"
#include "clipxai/results_log.h"

namespace clipxai {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kTopFraction = 0.2;

std::string read_file(const fs::path& path) {
  return read_input_file(path.string(), "run document");
}

void add_result(SavedRun& run, json result, const std::string& where) {
  if (!result.is_object() || !result.value("image", json()).is_string() ||
      !result.value("prompts", json()).is_array()) {
    throw input_error(where + ": a result needs \"image\" (a string) and \"prompts\" (an array)");
  }
  run.results.push_back(std::move(result));
}

// A results.jsonl line: a result, or an error record.
void add_record(SavedRun& run, json record, const std::string& where) {
  if (!record.is_object()) throw input_error(where + ": expected a JSON object");
  if (record.contains("prompts")) {
    add_result(run, std::move(record), where);
  } else {
    run.errors.push_back(std::move(record));
  }
}

std::string image_of(const json& record) {
  const auto image = record.find("image");
  return image != record.end() && image->is_string() ? image->get<std::string>() : std::string();
}

void read_results_lines(SavedRun& run, const fs::path& path) {
  std::vector<std::pair<json, std::string>> records;  // with where each came from
  const LogTail tail = read_log_lines(path.string(), [&](const LogLine& line) {
    records.emplace_back(line.record, path.string() + " line " + std::to_string(line.number));
  });
  if (tail.torn_line > 0) {
    throw input_error(path.string() + " line " + std::to_string(tail.torn_line) +
                      ": not a complete JSON object (a torn or partially written line?)");
  }
  // The file is a journal: a later record for an image (a resumed run retrying an image that
  // failed) replaces the earlier one.
  std::map<std::string, size_t> last_record;
  for (size_t i = 0; i < records.size(); ++i) last_record[image_of(records[i].first)] = i;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string image = image_of(records[i].first);
    if (image.empty() || last_record[image] == i) {
      add_record(run, std::move(records[i].first), records[i].second);
    }
  }
}

void read_document(SavedRun& run, const fs::path& path) {
  json document = parse_json_input(read_file(path), path.string());
  if (!document.is_object() || !document.contains("results") || !document["results"].is_array()) {
    throw input_error(path.string() +
                      ": expected a clipxai JSON document (an object with a \"results\" array)");
  }
  const json errors = document.value("errors", json::array());
  if (!errors.is_array()) throw input_error(path.string() + ": \"errors\" must be an array");
  const json results = document["results"];
  document.erase("results");
  document.erase("errors");
  run.header = std::move(document);
  for (size_t i = 0; i < results.size(); ++i) {
    add_result(run, results[i], path.string() + ": results[" + std::to_string(i) + "]");
  }
  for (const json& error : errors) run.errors.push_back(error);
}

// ---- check ----------------------------------------------------------------------------------

struct Grid {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<double> values;  // row-major
};

struct Prompt {
  double logit = 0;
  Grid grid;
  std::vector<std::string> tokens;
  std::vector<double> relevances;
};

using PairKey = std::tuple<std::string, std::string, int>;  // image, prompt text, repetition

struct PairEntry {
  PairKey key;
  Prompt prompt;
};

[[noreturn]] void invalid_field(const std::string& where, const std::string& what) {
  throw input_error(where + ": " + what);
}

double number_field(const json& object, const char* name, const std::string& where) {
  const auto field = object.find(name);
  if (field == object.end() || !field->is_number()) {
    invalid_field(where, std::string("\"") + name + "\" must be a number");
  }
  return field->get<double>();
}

Grid parse_grid(const json& prompt, const std::string& where) {
  const auto rows = prompt.find("grid");
  if (rows == prompt.end() || !rows->is_array() || rows->empty()) {
    invalid_field(where, "\"grid\" must be a non-empty array of rows");
  }
  Grid grid;
  grid.rows = rows->size();
  grid.cols = rows->front().is_array() ? rows->front().size() : 0;
  for (const json& row : *rows) {
    if (!row.is_array() || row.size() != grid.cols || grid.cols == 0) {
      invalid_field(where, "\"grid\" rows must be non-empty arrays of equal length");
    }
    for (const json& value : row) {
      if (!value.is_number()) invalid_field(where, "\"grid\" values must be numbers");
      grid.values.push_back(value.get<double>());
    }
  }
  return grid;
}

Prompt parse_prompt(const json& prompt, const std::string& where) {
  Prompt parsed;
  parsed.logit = number_field(prompt, "logit", where);
  parsed.grid = parse_grid(prompt, where);
  const auto tokens = prompt.find("tokens");
  if (tokens == prompt.end() || !tokens->is_array()) {
    invalid_field(where, "\"tokens\" must be an array");
  }
  for (const json& token : *tokens) {
    if (!token.is_object() || !token.value("token", json()).is_string()) {
      invalid_field(where, "each token needs \"token\" (a string) and \"relevance\" (a number)");
    }
    parsed.tokens.push_back(token["token"].get<std::string>());
    parsed.relevances.push_back(number_field(token, "relevance", where));
  }
  return parsed;
}

std::vector<PairEntry> pairs_of(const SavedRun& run) {
  std::vector<PairEntry> pairs;
  std::map<std::pair<std::string, std::string>, int> seen;
  for (const json& result : run.results) {
    const std::string image = result["image"].get<std::string>();
    for (const json& prompt : result["prompts"]) {
      const std::string where = run.source + ": image " + image;
      if (!prompt.is_object() || !prompt.value("text", json()).is_string()) {
        invalid_field(where, "each prompt needs \"text\" (a string)");
      }
      const std::string text = prompt["text"].get<std::string>();
      const int repetition = seen[{image, text}]++;
      pairs.push_back(
          {{image, text, repetition}, parse_prompt(prompt, where + ", prompt \"" + text + "\"")});
    }
  }
  return pairs;
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (double value : values) sum += value;
  return sum / static_cast<double>(values.size());
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double mean_a = mean_of(a);
  const double mean_b = mean_of(b);
  double covariance = 0, variance_a = 0, variance_b = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    covariance += (a[i] - mean_a) * (b[i] - mean_b);
    variance_a += (a[i] - mean_a) * (a[i] - mean_a);
    variance_b += (b[i] - mean_b) * (b[i] - mean_b);
  }
  // A constant map says nothing about where; two of them agree, one against a real map does not.
  if (variance_a == 0 || variance_b == 0) return variance_a == variance_b ? 1.0 : 0.0;
  return covariance / std::sqrt(variance_a * variance_b);
}

std::vector<double> min_max_normalised(const std::vector<double>& values) {
  const auto [low, high] = std::minmax_element(values.begin(), values.end());
  const double range = *high - *low;
  std::vector<double> normalised(values.size(), 0.0);
  if (range > 0) {
    for (size_t i = 0; i < values.size(); ++i) normalised[i] = (values[i] - *low) / range;
  }
  return normalised;
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double largest = 0;
  for (size_t i = 0; i < a.size(); ++i) largest = std::max(largest, std::abs(a[i] - b[i]));
  return largest;
}

std::vector<bool> top_cells(const std::vector<double>& values) {
  const size_t count =
      std::max<size_t>(1, static_cast<size_t>(std::ceil(kTopFraction * values.size() - 1e-9)));
  std::vector<size_t> order(values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return values[x] > values[y]; });
  std::vector<bool> selected(values.size(), false);
  for (size_t i = 0; i < count; ++i) selected[order[i]] = true;
  return selected;
}

double top_overlap(const std::vector<double>& a, const std::vector<double>& b) {
  const std::vector<bool> top_a = top_cells(a);
  const std::vector<bool> top_b = top_cells(b);
  size_t intersection = 0, union_size = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    intersection += top_a[i] && top_b[i];
    union_size += top_a[i] || top_b[i];
  }
  return static_cast<double>(intersection) / static_cast<double>(union_size);
}

std::string format_number(double value) {
  std::ostringstream text;
  text << std::setprecision(4) << value;
  return text.str();
}

void compare_pair(const Prompt& baseline, const Prompt& candidate,
                  const CheckTolerances& tolerances, PairComparison& comparison) {
  PairMetrics metrics;
  auto& failures = comparison.failures;
  if (baseline.grid.rows != candidate.grid.rows || baseline.grid.cols != candidate.grid.cols) {
    failures.push_back(
        "grid " + std::to_string(baseline.grid.rows) + "x" + std::to_string(baseline.grid.cols) +
        " vs " + std::to_string(candidate.grid.rows) + "x" + std::to_string(candidate.grid.cols));
  } else {
    const auto& a = baseline.grid.values;
    const auto& b = candidate.grid.values;
    metrics.pearson = pearson(a, b);
    metrics.max_grid_diff = max_abs_difference(min_max_normalised(a), min_max_normalised(b));
    metrics.top_overlap = top_overlap(a, b);
    if (!(*metrics.pearson >= tolerances.min_pearson)) {
      failures.push_back("pearson " + format_number(*metrics.pearson) + " < " +
                         format_number(tolerances.min_pearson));
    }
    if (!(*metrics.max_grid_diff <= tolerances.max_grid_diff)) {
      failures.push_back("grid diff " + format_number(*metrics.max_grid_diff) + " > " +
                         format_number(tolerances.max_grid_diff));
    }
    if (!(*metrics.top_overlap >= tolerances.min_top_overlap)) {
      failures.push_back("top-20% overlap " + format_number(*metrics.top_overlap) + " < " +
                         format_number(tolerances.min_top_overlap));
    }
  }
  metrics.logit_diff = std::abs(baseline.logit - candidate.logit);
  const double logit_limit = tolerances.max_logit_diff * std::max(1.0, std::abs(baseline.logit));
  if (!(metrics.logit_diff <= logit_limit)) {
    failures.push_back("logit " + format_number(baseline.logit) + " vs " +
                       format_number(candidate.logit));
  }
  if (baseline.tokens != candidate.tokens) {
    failures.push_back("tokens differ");
  } else {
    metrics.token_diff = max_abs_difference(baseline.relevances, candidate.relevances);
    if (!(*metrics.token_diff <= tolerances.max_token_diff)) {
      failures.push_back("token diff " + format_number(*metrics.token_diff) + " > " +
                         format_number(tolerances.max_token_diff));
    }
  }
  comparison.metrics = metrics;
  comparison.status = failures.empty() ? PairStatus::Pass : PairStatus::Differ;
}

PairComparison comparison_for(const PairKey& key, PairStatus status) {
  PairComparison comparison;
  std::tie(comparison.image, comparison.prompt, comparison.repetition) = key;
  comparison.status = status;
  return comparison;
}

std::vector<std::string> header_differences(const json& baseline, const json& candidate) {
  // A run read from results.jsonl alone has no header to compare.
  if (baseline.empty() || candidate.empty()) return {};
  const json method_a = baseline.value("method", json());
  const json method_b = candidate.value("method", json());
  if (!method_a.is_object() || !method_b.is_object()) {
    if (method_a == method_b) return {};
    return {"method: " + method_a.dump() + " vs " + method_b.dump()};
  }
  std::vector<std::string> differences;
  json keys = json::object();
  for (const auto& [key, value] : method_a.items()) keys[key] = true;
  for (const auto& [key, value] : method_b.items()) keys[key] = true;
  for (const auto& [key, unused] : keys.items()) {
    const json a = method_a.value(key, json());
    const json b = method_b.value(key, json());
    if (a != b) differences.push_back("method." + key + ": " + a.dump() + " vs " + b.dump());
  }
  return differences;
}

const char* status_name(PairStatus status) {
  switch (status) {
    case PairStatus::Pass:
      return "pass";
    case PairStatus::Differ:
      return "differ";
    case PairStatus::MissingInBaseline:
      return "missing_in_baseline";
    case PairStatus::MissingInCandidate:
      return "missing_in_candidate";
  }
  return "";
}

json optional_number(const std::optional<double>& value) { return value ? json(*value) : json(); }

// Characters, not bytes, so that non-ASCII file names and prompts keep the table aligned.
size_t display_width(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string prompt_label(const PairComparison& pair) {
  std::string label = json(pair.prompt).dump();
  if (pair.repetition > 0) label += " #" + std::to_string(pair.repetition + 1);
  return label;
}

void validate(const CheckTolerances& tolerances) {
  struct Bound {
    const char* option;
    double value;
    double low;
    double high;
  };
  const Bound bounds[] = {
      {"--min-pearson", tolerances.min_pearson, -1, 1},
      {"--max-grid-diff", tolerances.max_grid_diff, 0, 1},
      {"--min-top-overlap", tolerances.min_top_overlap, 0, 1},
      {"--max-logit-diff", tolerances.max_logit_diff, 0, HUGE_VAL},
      {"--max-token-diff", tolerances.max_token_diff, 0, 1},
  };
  for (const Bound& bound : bounds) {
    if (!(bound.value >= bound.low && bound.value <= bound.high)) {
      throw usage_error(std::string(bound.option) + " must be between " + format_number(bound.low) +
                        " and " + format_number(bound.high) + ", got " +
                        format_number(bound.value));
    }
  }
}

// As `explain --json` writes documents, so a merged document is byte for byte an unsharded one.

}  // namespace

SavedRun load_run(const std::string& path) {
  SavedRun run;
  run.source = path;
  const fs::path location(path);
  std::error_code error;
  if (fs::is_directory(location, error)) {
    const fs::path header = location / "run.json";
    if (fs::exists(header, error)) {
      run.header = parse_json_input(read_file(header), header.string());
      if (!run.header.is_object()) throw input_error(header.string() + ": expected a JSON object");
    }
    read_results_lines(run, location / "results.jsonl");
  } else if (location.extension() == ".jsonl") {
    read_results_lines(run, location);
  } else {
    read_document(run, location);
  }
  return run;
}

bool CheckReport::passed() const {
  return header_differences.empty() &&
         std::all_of(pairs.begin(), pairs.end(),
                     [](const PairComparison& pair) { return pair.status == PairStatus::Pass; });
}

CheckReport compare_runs(const SavedRun& baseline, const SavedRun& candidate,
                         const CheckTolerances& tolerances) {
  const std::vector<PairEntry> baseline_pairs = pairs_of(baseline);
  const std::vector<PairEntry> candidate_pairs = pairs_of(candidate);
  std::map<PairKey, const Prompt*> unmatched_candidates;
  for (const PairEntry& entry : candidate_pairs) unmatched_candidates[entry.key] = &entry.prompt;

  CheckReport report;
  report.header_differences = header_differences(baseline.header, candidate.header);
  report.baseline_errors = static_cast<int>(baseline.errors.size());
  report.candidate_errors = static_cast<int>(candidate.errors.size());
  for (const PairEntry& entry : baseline_pairs) {
    const auto match = unmatched_candidates.find(entry.key);
    if (match == unmatched_candidates.end()) {
      report.pairs.push_back(comparison_for(entry.key, PairStatus::MissingInCandidate));
      continue;
    }
    PairComparison comparison = comparison_for(entry.key, PairStatus::Pass);
    compare_pair(entry.prompt, *match->second, tolerances, comparison);
    report.pairs.push_back(std::move(comparison));
    unmatched_candidates.erase(match);
  }
  for (const PairEntry& entry : candidate_pairs) {
    if (unmatched_candidates.count(entry.key)) {
      report.pairs.push_back(comparison_for(entry.key, PairStatus::MissingInBaseline));
    }
  }
  return report;
}

json check_report_json(const CheckReport& report, const std::string& baseline_source,
                       const std::string& candidate_source, const CheckTolerances& tolerances) {
  json pairs = json::array();
  std::map<PairStatus, int> counts;
  for (const PairComparison& pair : report.pairs) {
    ++counts[pair.status];
    json metrics;
    if (pair.metrics) {
      metrics = {{"pearson", optional_number(pair.metrics->pearson)},
                 {"max_grid_diff", optional_number(pair.metrics->max_grid_diff)},
                 {"top_overlap", optional_number(pair.metrics->top_overlap)},
                 {"logit_diff", pair.metrics->logit_diff},
                 {"token_diff", optional_number(pair.metrics->token_diff)}};
    }
    pairs.push_back({{"image", pair.image},
                     {"prompt", pair.prompt},
                     {"repetition", pair.repetition},
                     {"status", status_name(pair.status)},
                     {"metrics", metrics},
                     {"failures", pair.failures}});
  }
  return {{"baseline", path_text(baseline_source)},
          {"candidate", path_text(candidate_source)},
          {"tolerances",
           {{"min_pearson", tolerances.min_pearson},
            {"max_grid_diff", tolerances.max_grid_diff},
            {"min_top_overlap", tolerances.min_top_overlap},
            {"max_logit_diff", tolerances.max_logit_diff},
            {"max_token_diff", tolerances.max_token_diff}}},
          {"header_differences", report.header_differences},
          {"pairs", pairs},
          {"summary",
           {{"pairs", report.pairs.size()},
            {"passed", counts[PairStatus::Pass]},
            {"differ", counts[PairStatus::Differ]},
            {"missing_in_baseline", counts[PairStatus::MissingInBaseline]},
            {"missing_in_candidate", counts[PairStatus::MissingInCandidate]},
            {"baseline_errors", report.baseline_errors},
            {"candidate_errors", report.candidate_errors},
            {"pass", report.passed()}}}};
}

void print_check_report(const CheckReport& report, std::ostream& out) {
  for (const std::string& difference : report.header_differences) {
    out << "header differs: " << difference << "\n";
  }
  const auto metric = [](const std::optional<double>& value) {
    return value ? format_number(*value) : std::string("-");
  };
  std::vector<std::vector<std::string>> rows = {{"status", "image", "prompt", "pearson",
                                                 "grid diff", "top overlap", "logit diff",
                                                 "token diff", "why"}};
  std::map<PairStatus, int> counts;
  for (const PairComparison& pair : report.pairs) {
    ++counts[pair.status];
    if (pair.status == PairStatus::Pass) continue;
    std::vector<std::string> row = {status_name(pair.status), pair.image, prompt_label(pair)};
    if (pair.metrics) {
      row.insert(row.end(),
                 {metric(pair.metrics->pearson), metric(pair.metrics->max_grid_diff),
                  metric(pair.metrics->top_overlap), format_number(pair.metrics->logit_diff),
                  metric(pair.metrics->token_diff)});
    } else {
      row.insert(row.end(), 5, "-");
    }
    std::string why;
    for (const std::string& failure : pair.failures) why += (why.empty() ? "" : "; ") + failure;
    row.push_back(why);
    rows.push_back(std::move(row));
  }
  if (rows.size() > 1) {
    std::vector<size_t> widths(rows.front().size(), 0);
    for (const auto& row : rows) {
      for (size_t column = 0; column < row.size(); ++column) {
        widths[column] = std::max(widths[column], display_width(row[column]));
      }
    }
    for (const auto& row : rows) {
      std::string line;
      for (size_t column = 0; column < row.size(); ++column) {
        line += row[column];
        if (column + 1 < row.size()) {
          line.append(widths[column] + 2 - display_width(row[column]), ' ');
        }
      }
      out << line.substr(0, line.find_last_not_of(' ') + 1) << "\n";
    }
  }
  out << (report.passed() ? "check passed: " : "check FAILED: ") << report.pairs.size()
      << " pairs, " << counts[PairStatus::Pass] << " within tolerance, "
      << counts[PairStatus::Differ] << " differ, " << counts[PairStatus::MissingInCandidate]
      << " missing in candidate, " << counts[PairStatus::MissingInBaseline]
      << " missing in baseline; image errors: " << report.baseline_errors << " in baseline, "
      << report.candidate_errors << " in candidate\n";
}

namespace {

// What reading a saved run reads: the document, or a directory's log and header.
void add_run_files(const std::string& run, std::vector<ProtectedFile>& files) {
  if (fs::is_directory(run)) {
    files.push_back({(fs::path(run) / "results.jsonl").string(), "a run's results log"});
    files.push_back({(fs::path(run) / "run.json").string(), "a run's header"});
  } else {
    files.push_back({run, "an input run"});
  }
}

}  // namespace

int run_check(const CheckOptions& options, std::ostream& out) {
  validate(options.tolerances);
  if (!options.json_path.empty() && options.json_path != "-") {
    std::vector<ProtectedFile> files;
    add_run_files(options.baseline, files);
    add_run_files(options.candidate, files);
    refuse_overwriting("--json", options.json_path, files);
  }
  const SavedRun baseline = load_run(options.baseline);
  const SavedRun candidate = load_run(options.candidate);
  const CheckReport report = compare_runs(baseline, candidate, options.tolerances);
  if (!options.json_path.empty()) {
    const std::string document =
        json_text(
            check_report_json(report, options.baseline, options.candidate, options.tolerances)) +
        "\n";
    if (options.json_path == "-") {
      out << document;
    } else {
      write_file_atomically(options.json_path, document);
    }
  }
  if (options.json_path != "-") print_check_report(report, out);
  return report.passed() ? kExitOk : kExitDifferent;
}

// ---- merge ----------------------------------------------------------------------------------

bool image_order_less(const std::string& a, const std::string& b) {
  return fs::path(a) < fs::path(b);
}

namespace {

// The header's "shard" {"index": K, "count": N}, taken out of it; nullopt for an unsharded run.
std::optional<Shard> take_shard(json& header, const std::string& input) {
  const auto found = header.find("shard");
  if (found == header.end()) return std::nullopt;
  const json value = *found;
  header.erase(found);
  const auto number = [&](const char* key) {
    const json field = value.is_object() ? value.value(key, json()) : json();
    return field.is_number_integer() ? field.get<int64_t>() : int64_t{0};
  };
  const int64_t index = number("index");
  const int64_t count = number("count");
  if (count < 1 || count > (1 << 20) || index < 1 || index > count) {
    throw input_error(input +
                      ": \"shard\" must be {\"index\": K, \"count\": N} with 1 <= K <= N, got " +
                      json_text(value, -1));
  }
  return Shard{static_cast<int>(index), static_cast<int>(count)};
}

// Every shard of the job given exactly once, or no input a shard.
void check_shards(const std::vector<std::string>& inputs,
                  const std::vector<std::optional<Shard>>& shards) {
  const auto first_shard = std::find_if(shards.begin(), shards.end(),
                                        [](const std::optional<Shard>& shard) { return shard; });
  if (first_shard == shards.end()) return;
  const int count = (*first_shard)->count;
  const std::string& first_input = inputs[static_cast<size_t>(first_shard - shards.begin())];
  std::map<int, std::string> given;  // index -> input
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!shards[i]) {
      throw input_error(inputs[i] + " is an unsharded run, " + first_input + " a shard (" +
                        std::to_string((*first_shard)->index) + "/" + std::to_string(count) + ")");
    }
    if (shards[i]->count != count) {
      throw input_error(inputs[i] + " is shard " + std::to_string(shards[i]->index) + "/" +
                        std::to_string(shards[i]->count) + ", of another split than " +
                        first_input + " (" + std::to_string(count) + " shards)");
    }
    const auto [place, inserted] = given.emplace(shards[i]->index, inputs[i]);
    if (!inserted) {
      throw input_error("shard " + std::to_string(shards[i]->index) + "/" + std::to_string(count) +
                        " is given twice: " + place->second + " and " + inputs[i]);
    }
  }
  std::string missing;
  for (int index = 1; index <= count; ++index) {
    if (!given.count(index)) {
      missing +=
          (missing.empty() ? "" : ", ") + std::to_string(index) + "/" + std::to_string(count);
    }
  }
  if (!missing.empty()) {
    throw input_error("the job has " + std::to_string(count) + " shards and " +
                      std::to_string(given.size()) + " were given: missing " + missing);
  }
}

}  // namespace

json merge_runs(const std::vector<std::string>& inputs) {
  if (inputs.empty()) throw usage_error("merge needs at least one input run");
  json header;
  std::string header_source;
  std::vector<json> results;
  std::vector<json> errors;
  std::map<std::string, std::string> image_sources;
  std::vector<SavedRun> runs;
  std::vector<std::optional<Shard>> shards;
  for (const std::string& input : inputs) {
    runs.push_back(load_run(input));
    if (runs.back().header.empty()) {
      throw input_error(input +
                        ": no run header (a directory needs run.json next to results.jsonl)");
    }
    shards.push_back(take_shard(runs.back().header, input));
    pairs_of(runs.back());  // every result must be one `check` can read
  }
  check_shards(inputs, shards);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string& input = inputs[i];
    SavedRun& run = runs[i];
    if (header_source.empty()) {
      header = run.header;
      header_source = input;
    } else if (run.header != header) {
      const json patch = json::diff(header, run.header);
      throw input_error(input + " and " + header_source +
                        " are not parts of one job: they differ at " +
                        patch.front().value("path", std::string("/")));
    }
    for (json& result : run.results) {
      const std::string image = result["image"].get<std::string>();
      const auto [place, inserted] = image_sources.emplace(image, input);
      if (!inserted) {
        throw input_error("image " + image + " has results in both " + place->second + " and " +
                          input);
      }
      results.push_back(std::move(result));
    }
    for (json& error : run.errors) errors.push_back(std::move(error));
  }
  // Error records without a string "image" sort first, keeping their order.
  const auto by_image = [&](const json& a, const json& b) {
    return image_order_less(image_of(a), image_of(b));
  };
  std::stable_sort(results.begin(), results.end(), by_image);
  std::stable_sort(errors.begin(), errors.end(), by_image);
  json document = header;
  document["results"] = std::move(results);
  document["errors"] = std::move(errors);
  return document;
}

void run_merge(const std::string& output_path, const std::vector<std::string>& inputs,
               std::ostream& out) {
  if (output_path != "-") {
    std::vector<ProtectedFile> files;
    for (const std::string& input : inputs) add_run_files(input, files);
    refuse_overwriting("merge", output_path, files);
  }
  const json document = merge_runs(inputs);
  if (output_path == "-") {
    out << json_text(document) << '\n';
    return;
  }
  write_file_atomically(output_path, json_text(document) + "\n");
  out << "merged " << inputs.size() << " runs: " << document["results"].size() << " images, "
      << document["errors"].size() << " errors -> " << output_path << "\n";
}

}  // namespace clipxai
