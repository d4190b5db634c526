// `clipxai check` (regression test of one run against another) and `clipxai merge` (joining the
// shards of one batch job), both working on saved runs.
//
// A run is read by load_run from any of:
//   - a JSON document written by `explain --json`:
//       {"model": {...}, "method": {...}, "results": [result...], "errors": [error...]}
//     (everything except "results" and "errors" is the run's header);
//   - an `--out` directory DIR: DIR/results.jsonl holds one JSON object per line, in the order
//     images finished — an object with "prompts" is a result object (the same object as in
//     "results"), any other object an error record (as in "errors"). A later record for the
//     same image replaces an earlier one (a resumed run retrying an image that failed). A line
//     that is not a JSON object, a torn last line included, is an error naming the line.
//     DIR/run.json, when present, is the header ({"model": ..., "method": ...}, and whatever
//     else the document carries besides "results" and "errors"), written by batch runs;
//   - a results.jsonl file by itself (no header).
//
// check: every prompt of every result is one pair, keyed by the image path as stored, the prompt
// text, and which repetition of that text it is for that image (so repeated prompts pair up in
// order). For pairs present in both runs, with grids taken as stored (rows, top row first):
//   pearson      Pearson correlation of the two grids (1 when both are constant, 0 when only
//                one is)
//   grid diff    max |a - b| of the min–max normalised grids (a constant grid normalises to zeros)
//   top overlap  IoU of the top-20% cells (ceil(0.2·cells) highest, ties to the lower index)
//   logit diff   |logit_a - logit_b|, compared against max_logit_diff · max(1, |baseline logit|)
//   token diff   max |relevance_a - relevance_b| over the prompt's tokens
// A pair differs when any metric is outside its tolerance, the grid sizes differ, or the token
// lists differ. Pairs present in only one run are reported as missing and fail the check. A
// difference in the "method" header (the explanation settings) also fails the check; the "model"
// header is not compared (it carries paths that legitimately differ between machines, and a
// different model shows in the numbers).
//
// Default tolerances: a deterministic rerun on the same machine agrees to ~1e-6; other thread
// counts or CPUs change float summation order, which moves values by a few ulps of float32. The
// defaults sit orders of magnitude above that noise and well below a real change in the
// explanation (another start layer or model changes the maps wholesale): pearson >= 0.99,
// grid diff <= 0.05 (5% of the map's range), top overlap >= 0.8 (on a 7x7 grid one swapped
// cell of the 10 gives 9/11 = 0.82), logit diff <= 1e-3 relative (CLIP logits are ~20–35, so
// ~0.03), token diff <= 0.05 (relevances sum to 1).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace clipxai {

struct SavedRun {
  std::string source;                                // the path it was read from, for messages
  nlohmann::json header = nlohmann::json::object();  // empty when the run has none
  std::vector<nlohmann::json> results;               // result objects, as stored
  std::vector<nlohmann::json> errors;                // error records, as stored
};

// Throws Error(Input) naming the file (and line, for results.jsonl) when it is unreadable, not
// JSON, or not shaped as described above.
SavedRun load_run(const std::string& path);

struct CheckTolerances {
  double min_pearson = 0.99;
  double max_grid_diff = 0.05;
  double min_top_overlap = 0.8;
  double max_logit_diff = 1e-3;  // relative to max(1, |baseline logit|)
  double max_token_diff = 0.05;
};

struct PairMetrics {
  std::optional<double> pearson;        // absent when the grid sizes differ
  std::optional<double> max_grid_diff;  // likewise
  std::optional<double> top_overlap;    // likewise
  double logit_diff = 0;
  std::optional<double> token_diff;  // absent when the token lists differ
};

enum class PairStatus { Pass, Differ, MissingInBaseline, MissingInCandidate };

struct PairComparison {
  std::string image;
  std::string prompt;
  int repetition = 0;  // 0 for the first prompt with this text for this image, 1 for the next...
  PairStatus status = PairStatus::Pass;
  std::optional<PairMetrics> metrics;  // absent for missing pairs
  std::vector<std::string> failures;   // why it differs, one readable phrase per reason
};

struct CheckReport {
  std::vector<PairComparison> pairs;            // baseline order, then pairs only in the candidate
  std::vector<std::string> header_differences;  // "method.start_layer: -1 vs 0"
  int baseline_errors = 0;
  int candidate_errors = 0;
  bool passed() const;
};

// Throws Error(Input) when a result object lacks a field the comparison needs (image, prompts,
// text, logit, grid, tokens) or has one of the wrong shape, naming the run and the image.
CheckReport compare_runs(const SavedRun& baseline, const SavedRun& candidate,
                         const CheckTolerances& tolerances);

// The machine-readable report: {"baseline", "candidate", "tolerances", "header_differences",
// "pairs": [{"image", "prompt", "repetition", "status" ("pass" | "differ" |
// "missing_in_baseline" | "missing_in_candidate"), "metrics": {"pearson", "max_grid_diff",
// "top_overlap", "logit_diff", "token_diff"} (null where not computable) or null, "failures"}],
// "summary": {"pairs", "passed", "differ", "missing_in_baseline", "missing_in_candidate",
// "baseline_errors", "candidate_errors", "pass"}}.
nlohmann::json check_report_json(const CheckReport& report, const std::string& baseline_source,
                                 const std::string& candidate_source,
                                 const CheckTolerances& tolerances);

// The readable report: the header differences, a table of the failing and missing pairs, and a
// summary line.
void print_check_report(const CheckReport& report, std::ostream& out);

struct CheckOptions {
  std::string baseline;
  std::string candidate;
  CheckTolerances tolerances;
  std::string json_path;  // empty: none; "-": the JSON report replaces the readable one on `out`
};

// The whole `clipxai check` command. Returns kExitOk when within tolerance, kExitDifferent when
// anything differs or is missing. Throws Error(Usage) for a tolerance out of range and
// Error(Input) for unreadable or invalid runs.
int run_check(const CheckOptions& options, std::ostream& out);

// The order batch runs list images in, and merge sorts results by: std::filesystem::path order
// (component by component), so a folder's contents come together: "a/b.png" < "a-b.png" <
// "a.png", although '-' and '.' sort before '/' byte by byte.
bool image_order_less(const std::string& a, const std::string& b);

// The document an unsharded run of the same job writes: the common header, the results of all
// inputs sorted by image_order_less, and the error records sorted likewise (by their "image").
// Inputs are runs as load_run reads them (normally the shards' --out directories). Throws
// Error(Input) when an input has no header, the headers differ (naming the inputs and the first
// differing field), an image has results in more than one place, a result is not one `check`
// can read (a ragged, null or text grid), or the inputs are shards ("shard" in their headers,
// left out of the merged one) but not every shard 1/N..N/N exactly once.
nlohmann::json merge_runs(const std::vector<std::string>& inputs);

// The whole `clipxai merge OUT INPUT...` command: writes merge_runs' document to `output_path`
// atomically ("-": to `out`) and otherwise prints one summary line to `out`. Error(Usage) before
// reading anything when `output_path` is one of the inputs' files.
void run_merge(const std::string& output_path, const std::vector<std::string>& inputs,
               std::ostream& out);

}  // namespace clipxai
