#include "clipxai/check.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "clipxai/error.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using GridRows = std::vector<std::vector<double>>;

json prompt_json(const std::string& text, double logit, const GridRows& grid,
                 const std::vector<std::pair<std::string, double>>& tokens = {{"a", 0.4},
                                                                              {"cat", 0.6}}) {
  json token_list = json::array();
  for (const auto& [token, relevance] : tokens) {
    token_list.push_back({{"token", token}, {"relevance", relevance}});
  }
  return {{"text", text}, {"logit", logit}, {"grid", grid}, {"tokens", token_list}};
}

json result_json(const std::string& image, const std::vector<json>& prompts) {
  return {{"image", image}, {"width", 64}, {"height", 48}, {"prompts", prompts}};
}

SavedRun run_of(std::vector<json> results, json header = json::object()) {
  SavedRun run;
  run.source = "test-run";
  run.header = std::move(header);
  run.results = std::move(results);
  return run;
}

const GridRows kRamp = {{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}};

struct PairCase {
  std::string name;
  GridRows baseline_grid;
  GridRows candidate_grid;
  double baseline_logit;
  double candidate_logit;
  std::vector<std::pair<std::string, double>> candidate_tokens;
  PairStatus expected_status;
  std::string expected_failure;  // a substring of the joined failures; empty when passing
};

class ComparePairTest : public ::testing::TestWithParam<PairCase> {};

TEST_P(ComparePairTest, StatusAndReason) {
  const PairCase& c = GetParam();
  const SavedRun baseline =
      run_of({result_json("x.png", {prompt_json("a cat", c.baseline_logit, c.baseline_grid)})});
  const SavedRun candidate = run_of({result_json(
      "x.png", {prompt_json("a cat", c.candidate_logit, c.candidate_grid, c.candidate_tokens)})});
  const CheckReport report = compare_runs(baseline, candidate, CheckTolerances{});
  ASSERT_EQ(report.pairs.size(), 1u);
  const PairComparison& pair = report.pairs[0];
  EXPECT_EQ(pair.status, c.expected_status);
  std::string failures;
  for (const std::string& failure : pair.failures) failures += failure + "; ";
  if (c.expected_failure.empty()) {
    EXPECT_TRUE(pair.failures.empty()) << failures;
  } else {
    EXPECT_NE(failures.find(c.expected_failure), std::string::npos) << failures;
  }
  EXPECT_EQ(report.passed(), c.expected_status == PairStatus::Pass);
}

const std::vector<std::pair<std::string, double>> kTokens = {{"a", 0.4}, {"cat", 0.6}};

INSTANTIATE_TEST_SUITE_P(
    Tolerances, ComparePairTest,
    ::testing::Values(
        PairCase{"identical", kRamp, kRamp, 30, 30, kTokens, PairStatus::Pass, ""},
        // Scale and offset do not change where the model looks.
        PairCase{"affine",
                 kRamp,
                 {{1, 3, 5, 7, 9}, {11, 13, 15, 17, 19}},
                 30,
                 30,
                 kTokens,
                 PairStatus::Pass,
                 ""},
        PairCase{"rerun noise",
                 kRamp,
                 {{0, 1, 2, 3, 4.000001}, {5, 6, 7, 8, 9}},
                 30,
                 30.00003,
                 kTokens,
                 PairStatus::Pass,
                 ""},
        PairCase{"inverted",
                 kRamp,
                 {{9, 8, 7, 6, 5}, {4, 3, 2, 1, 0}},
                 30,
                 30,
                 kTokens,
                 PairStatus::Differ,
                 "pearson -1 < 0.99"},
        // Cells 7 and 8 swap: top-2 sets {9,8} and {9,7} overlap 1/3, the maps move by 1/9.
        PairCase{"top cells moved",
                 kRamp,
                 {{0, 1, 2, 3, 4}, {5, 6, 8, 7, 9}},
                 30,
                 30,
                 kTokens,
                 PairStatus::Differ,
                 "top-20% overlap 0.3333 < 0.8; "},
        PairCase{"grid size",
                 kRamp,
                 {{0, 1}, {2, 3}},
                 30,
                 30,
                 kTokens,
                 PairStatus::Differ,
                 "grid 2x5 vs 2x2"},
        PairCase{"both constant",
                 {{2, 2}, {2, 2}},
                 {{5, 5}, {5, 5}},
                 30,
                 30,
                 kTokens,
                 PairStatus::Pass,
                 ""},
        PairCase{"one constant",
                 kRamp,
                 {{1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}},
                 30,
                 30,
                 kTokens,
                 PairStatus::Differ,
                 "pearson 0 < 0.99"},
        // The logit tolerance is relative to the logit, absolute below 1.
        PairCase{"logit within relative", kRamp, kRamp, 30, 30.029, kTokens, PairStatus::Pass, ""},
        PairCase{"logit beyond relative", kRamp, kRamp, 30, 30.031, kTokens, PairStatus::Differ,
                 "logit 30 vs 30.03"},
        PairCase{"small logit within", kRamp, kRamp, 0.5, 0.5009, kTokens, PairStatus::Pass, ""},
        PairCase{"small logit beyond", kRamp, kRamp, 0.5, 0.5011, kTokens, PairStatus::Differ,
                 "logit 0.5 vs 0.5011"},
        PairCase{"token relevance",
                 kRamp,
                 kRamp,
                 30,
                 30,
                 {{"a", 0.3}, {"cat", 0.7}},
                 PairStatus::Differ,
                 "token diff 0.1 > 0.05"},
        PairCase{"token text",
                 kRamp,
                 kRamp,
                 30,
                 30,
                 {{"a", 0.4}, {"dog", 0.6}},
                 PairStatus::Differ,
                 "tokens differ"}),
    [](const auto& info) {
      std::string name = info.param.name;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(CompareRuns, ReportsMetricsOfMatchedPairs) {
  const SavedRun baseline = run_of({result_json("x.png", {prompt_json("a cat", 30, kRamp)})});
  const SavedRun candidate =
      run_of({result_json("x.png", {prompt_json("a cat", 30.5, {{0, 1, 2, 3, 4}, {5, 6, 8, 7, 9}},
                                                {{"a", 0.5}, {"cat", 0.5}})})});
  const PairComparison pair = compare_runs(baseline, candidate, CheckTolerances{}).pairs.at(0);
  ASSERT_TRUE(pair.metrics.has_value());
  EXPECT_NEAR(*pair.metrics->pearson, 0.987878787878, 1e-9);
  EXPECT_NEAR(*pair.metrics->max_grid_diff, 1.0 / 9.0, 1e-12);
  EXPECT_NEAR(*pair.metrics->top_overlap, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(pair.metrics->logit_diff, 0.5, 1e-12);
  EXPECT_NEAR(*pair.metrics->token_diff, 0.1, 1e-12);
}

TEST(CompareRuns, LooserTolerancesAcceptTheSameDifference) {
  const SavedRun baseline = run_of({result_json("x.png", {prompt_json("a cat", 30, kRamp)})});
  const SavedRun candidate = run_of(
      {result_json("x.png", {prompt_json("a cat", 30, {{0, 1, 2, 3, 4}, {5, 6, 8, 7, 9}})})});
  CheckTolerances loose;
  loose.min_pearson = 0.98;
  loose.max_grid_diff = 0.2;
  loose.min_top_overlap = 0.3;
  EXPECT_FALSE(compare_runs(baseline, candidate, CheckTolerances{}).passed());
  EXPECT_TRUE(compare_runs(baseline, candidate, loose).passed());
}

TEST(CompareRuns, ReportsPairsMissingOnEitherSideInBaselineOrder) {
  const SavedRun baseline = run_of(
      {result_json("a.png", {prompt_json("cat", 30, kRamp), prompt_json("dog", 20, kRamp)})});
  const SavedRun candidate = run_of({result_json("b.png", {prompt_json("cat", 30, kRamp)}),
                                     result_json("a.png", {prompt_json("cat", 30, kRamp)})});
  const CheckReport report = compare_runs(baseline, candidate, CheckTolerances{});
  ASSERT_EQ(report.pairs.size(), 3u);
  const std::vector<std::tuple<std::string, std::string, PairStatus>> expected = {
      {"a.png", "cat", PairStatus::Pass},
      {"a.png", "dog", PairStatus::MissingInCandidate},
      {"b.png", "cat", PairStatus::MissingInBaseline}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(report.pairs[i].image, std::get<0>(expected[i]));
    EXPECT_EQ(report.pairs[i].prompt, std::get<1>(expected[i]));
    EXPECT_EQ(report.pairs[i].status, std::get<2>(expected[i]));
  }
  EXPECT_FALSE(report.passed());
}

TEST(CompareRuns, RepeatedPromptsPairUpInOrder) {
  const GridRows other = {{9, 8, 7, 6, 5}, {4, 3, 2, 1, 0}};
  const SavedRun baseline = run_of(
      {result_json("a.png", {prompt_json("cat", 30, kRamp), prompt_json("cat", 30, other)})});
  const SavedRun candidate =
      run_of({result_json("a.png", {prompt_json("cat", 30, kRamp), prompt_json("cat", 30, other),
                                    prompt_json("cat", 30, kRamp)})});
  const CheckReport report = compare_runs(baseline, candidate, CheckTolerances{});
  ASSERT_EQ(report.pairs.size(), 3u);
  EXPECT_EQ(report.pairs[0].status, PairStatus::Pass);
  EXPECT_EQ(report.pairs[1].status, PairStatus::Pass);
  EXPECT_EQ(report.pairs[2].repetition, 2);
  EXPECT_EQ(report.pairs[2].status, PairStatus::MissingInBaseline);
}

TEST(CompareRuns, MethodDifferencesFailModelDifferencesDoNot) {
  const std::vector<json> results = {result_json("a.png", {prompt_json("cat", 30, kRamp)})};
  const json header = {{"model", {{"path", "/home/me/model.pt"}}},
                       {"method", {{"name", "chefer2021"}, {"start_layer", 11}}}};
  json moved_model = header;
  moved_model["model"]["path"] = "/ci/model.pt";
  json other_layer = header;
  other_layer["method"]["start_layer"] = 0;

  EXPECT_TRUE(compare_runs(run_of(results, header), run_of(results, moved_model), {}).passed());
  EXPECT_TRUE(compare_runs(run_of(results, header), run_of(results), {}).passed());
  const CheckReport report =
      compare_runs(run_of(results, header), run_of(results, other_layer), {});
  EXPECT_FALSE(report.passed());
  EXPECT_EQ(report.header_differences, std::vector<std::string>{"method.start_layer: 11 vs 0"});
}

struct InvalidResultCase {
  std::string name;
  json prompt;
  std::string expected_message;
};

class InvalidResultTest : public ::testing::TestWithParam<InvalidResultCase> {};

TEST_P(InvalidResultTest, ThrowsInputErrorNamingTheImage) {
  const SavedRun bad = run_of({result_json("odd.png", {GetParam().prompt})});
  const SavedRun good = run_of({result_json("odd.png", {prompt_json("cat", 30, kRamp)})});
  try {
    compare_runs(good, bad, CheckTolerances{});
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Input);
    const std::string message = error.what();
    EXPECT_NE(message.find("test-run: image odd.png"), std::string::npos) << message;
    EXPECT_NE(message.find(GetParam().expected_message), std::string::npos) << message;
  }
}

json with(json object, const std::string& key, json value) {
  object[key] = std::move(value);
  return object;
}

INSTANTIATE_TEST_SUITE_P(
    Fields, InvalidResultTest,
    ::testing::Values(
        InvalidResultCase{"no_text", json{{"logit", 1}}, "\"text\""},
        InvalidResultCase{"logit_string", with(prompt_json("cat", 1, kRamp), "logit", "high"),
                          "\"logit\" must be a number"},
        InvalidResultCase{"ragged_grid",
                          with(prompt_json("cat", 1, kRamp), "grid", json{{1, 2}, {3}}),
                          "rows must be non-empty arrays of equal length"},
        InvalidResultCase{"null_in_grid",
                          with(prompt_json("cat", 1, kRamp), "grid", json{{1, nullptr}}),
                          "values must be numbers"},
        InvalidResultCase{"empty_grid", with(prompt_json("cat", 1, kRamp), "grid", json::array()),
                          "non-empty array of rows"},
        InvalidResultCase{"no_tokens", with(prompt_json("cat", 1, kRamp), "tokens", nullptr),
                          "\"tokens\" must be an array"}),
    [](const auto& info) { return info.param.name; });

// ---- files --------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "clipxai-check-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

const json kHeader = {{"model", {{"name", "tiny"}}},
                      {"method", {{"name", "chefer2021"}, {"start_layer", 1}}}};

json document_of(const std::vector<json>& results, const std::vector<json>& errors) {
  json document = kHeader;
  document["results"] = results;
  document["errors"] = errors;
  return document;
}

// Writes a run the way batch runs leave their --out directory.
void write_run_directory(const fs::path& directory, const std::vector<json>& records,
                         const json& header = kHeader) {
  std::string lines;
  for (const json& record : records) lines += record.dump() + "\n";
  write_text(directory / "results.jsonl", lines);
  write_text(directory / "run.json", header.dump());
}

TEST(LoadRun, ReadsADocument) {
  TempDir temp;
  const json error = {{"image", "bad.png"}, {"error", "truncated PNG"}};
  write_text(temp.path() / "run.json",
             document_of({result_json("a.png", {prompt_json("cat", 30, kRamp)})}, {error}).dump());
  const SavedRun run = load_run((temp.path() / "run.json").string());
  EXPECT_EQ(run.header, kHeader);
  ASSERT_EQ(run.results.size(), 1u);
  EXPECT_EQ(run.results[0]["image"], "a.png");
  EXPECT_EQ(run.errors, std::vector<json>{error});
}

TEST(LoadRun, ReadsAnOutDirectoryWithErrorLinesAndHeader) {
  TempDir temp;
  const json error = {{"image", "bad.png"}, {"error", "truncated PNG"}};
  write_run_directory(temp.path(), {result_json("a.png", {prompt_json("cat", 30, kRamp)}), error,
                                    result_json("b.png", {prompt_json("cat", 30, kRamp)})});
  const SavedRun run = load_run(temp.path().string());
  EXPECT_EQ(run.header, kHeader);
  ASSERT_EQ(run.results.size(), 2u);
  EXPECT_EQ(run.results[1]["image"], "b.png");
  EXPECT_EQ(run.errors, std::vector<json>{error});

  fs::remove(temp.path() / "run.json");
  EXPECT_TRUE(load_run(temp.path().string()).header.empty());
  EXPECT_EQ(load_run((temp.path() / "results.jsonl").string()).results.size(), 2u);
}

TEST(LoadRun, LaterRecordsForAnImageReplaceEarlierOnes) {
  TempDir temp;
  const json failed = {{"image", "a.png"}, {"error", "could not read"}};
  const json explained = result_json("a.png", {prompt_json("cat", 30, kRamp)});
  const json other = result_json("b.png", {prompt_json("cat", 30, kRamp)});
  write_run_directory(temp.path() / "retried", {failed, other, explained});
  write_run_directory(temp.path() / "failed later", {explained, other, failed});

  const SavedRun retried = load_run((temp.path() / "retried").string());
  EXPECT_EQ(retried.results, (std::vector<json>{other, explained}));
  EXPECT_TRUE(retried.errors.empty());
  const SavedRun failed_later = load_run((temp.path() / "failed later").string());
  EXPECT_EQ(failed_later.results, std::vector<json>{other});
  EXPECT_EQ(failed_later.errors, std::vector<json>{failed});
}

struct BadRunCase {
  std::string name;
  std::string file;  // written under a temporary directory, unless empty
  std::string contents;
  std::string run;  // what load_run reads, relative to that directory ("" = the directory)
  std::string expected_message;
};

class BadRunTest : public ::testing::TestWithParam<BadRunCase> {};

TEST_P(BadRunTest, ThrowsInputErrorNamingTheFile) {
  const BadRunCase& c = GetParam();
  TempDir temp;
  if (!c.file.empty()) write_text(temp.path() / c.file, c.contents);
  try {
    load_run((temp.path() / c.run).string());
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Input);
    EXPECT_NE(std::string(error.what()).find(c.expected_message), std::string::npos)
        << error.what();
  }
}

const std::string kGoodLine = result_json("a.png", {prompt_json("cat", 30, kRamp)}).dump();

INSTANTIATE_TEST_SUITE_P(
    Files, BadRunTest,
    ::testing::Values(
        BadRunCase{"missing_results_jsonl", "", "", "", "results.jsonl: does not exist"},
        BadRunCase{"torn_last_line", "results.jsonl",
                   kGoodLine + "\n" + kGoodLine + "\n" + kGoodLine.substr(0, 40), "",
                   "results.jsonl line 3: not a complete JSON object"},
        BadRunCase{"line_not_object", "results.jsonl", kGoodLine + "\n[1, 2]\n", "",
                   "results.jsonl line 2: expected a JSON object"},
        BadRunCase{"result_without_image", "results.jsonl", R"({"prompts": []})", "",
                   "results.jsonl line 1: a result needs \"image\""},
        BadRunCase{"header_not_object", "run.json", "[]", "", "run.json: expected a JSON object"},
        BadRunCase{"document_not_json", "doc.json", "{\"results\": [", "doc.json",
                   "doc.json: not valid JSON"},
        BadRunCase{"document_without_results", "doc.json", R"({"model": {}})", "doc.json",
                   "doc.json: expected a clipxai JSON document"},
        BadRunCase{"document_errors_not_array", "doc.json", R"({"results": [], "errors": 3})",
                   "doc.json", "\"errors\" must be an array"},
        BadRunCase{"document_result_without_prompts", "doc.json",
                   R"({"results": [{"image": "a.png"}]})", "doc.json",
                   "doc.json: results[0]: a result needs"},
        BadRunCase{"missing_document", "", "", "absent.json",
                   "absent.json: cannot read the run document: does not exist"},
        BadRunCase{"document_nested_too_deep", "doc.json",
                   std::string(100000, '[') + std::string(100000, ']'), "doc.json",
                   "doc.json: not valid JSON (nested deeper than 100 levels)"},
        BadRunCase{"document_number_out_of_range", "doc.json", R"({"results": [1e400]})",
                   "doc.json", "doc.json: not valid JSON ([json.exception.out_of_range.406]"},
        BadRunCase{"line_number_out_of_range", "results.jsonl",
                   kGoodLine + "\n" + R"({"image": "b.png", "x": -1e400})" + "\n", "",
                   "results.jsonl line 2: not valid JSON ([json.exception.out_of_range.406]"},
        BadRunCase{"line_nested_too_deep", "results.jsonl",
                   std::string(101, '[') + std::string(101, ']') + "\n", "",
                   "results.jsonl line 1: not valid JSON (nested deeper than 100 levels"}),
    [](const auto& info) { return info.param.name; });

TEST(RunCheck, ExitCodesTableAndJson) {
  TempDir temp;
  const std::vector<json> results = {result_json("a.png", {prompt_json("cat", 30, kRamp)}),
                                     result_json("b.png", {prompt_json("cat", 25, kRamp)})};
  write_text(temp.path() / "baseline.json", document_of(results, {}).dump());
  write_run_directory(temp.path() / "same", results);
  write_run_directory(temp.path() / "changed",
                      {results[0], result_json("b.png", {prompt_json("cat", 26, kRamp)})});

  CheckOptions options;
  options.baseline = (temp.path() / "baseline.json").string();
  options.candidate = (temp.path() / "same").string();
  std::ostringstream same_out;
  EXPECT_EQ(run_check(options, same_out), kExitOk);
  EXPECT_EQ(same_out.str(),
            "check passed: 2 pairs, 2 within tolerance, 0 differ, 0 missing in candidate, 0 "
            "missing in baseline; image errors: 0 in baseline, 0 in candidate\n");

  options.candidate = (temp.path() / "changed").string();
  options.json_path = (temp.path() / "check.json").string();
  std::ostringstream changed_out;
  EXPECT_EQ(run_check(options, changed_out), kExitDifferent);
  EXPECT_NE(changed_out.str().find("differ  b.png  \"cat\""), std::string::npos)
      << changed_out.str();
  EXPECT_NE(changed_out.str().find("check FAILED: 2 pairs, 1 within tolerance, 1 differ"),
            std::string::npos);
  std::ifstream written(options.json_path);
  const json report = json::parse(written);
  EXPECT_EQ(report["summary"]["pass"], false);
  EXPECT_EQ(report["summary"]["differ"], 1);
  EXPECT_EQ(report["pairs"][1]["status"], "differ");
  EXPECT_EQ(report["pairs"][1]["metrics"]["logit_diff"], 1.0);

  options.json_path = "-";
  std::ostringstream json_out;
  EXPECT_EQ(run_check(options, json_out), kExitDifferent);
  EXPECT_EQ(json::parse(json_out.str()), report) << "stdout holds only the JSON report";
}

TEST(RunCheck, RejectsTolerancesOutOfRange) {
  const std::vector<std::pair<double CheckTolerances::*, double>> bad = {
      {&CheckTolerances::min_pearson, 1.5},
      {&CheckTolerances::max_grid_diff, -0.1},
      {&CheckTolerances::min_top_overlap, 2},
      {&CheckTolerances::max_logit_diff, -1},
      {&CheckTolerances::max_token_diff, 1.1}};
  for (const auto& [member, value] : bad) {
    CheckOptions options;
    options.tolerances.*member = value;
    std::ostringstream out;
    try {
      run_check(options, out);
      ADD_FAILURE() << "accepted " << value;
    } catch (const Error& error) {
      EXPECT_EQ(error.category(), ErrorCategory::Usage) << error.what();
    }
  }
}

// ---- merge --------------------------------------------------------------------------------

TEST(ImageOrder, ComparesPathsComponentByComponent) {
  const std::vector<std::string> sorted = {"a/b.png", "a/c/d.png", "a-b.png", "a.png", "b.png"};
  for (size_t i = 0; i + 1 < sorted.size(); ++i) {
    EXPECT_TRUE(image_order_less(sorted[i], sorted[i + 1])) << sorted[i] << " " << sorted[i + 1];
    EXPECT_FALSE(image_order_less(sorted[i + 1], sorted[i])) << sorted[i + 1] << " " << sorted[i];
  }
}

TEST(Merge, ShardsJoinIntoTheUnshardedDocument) {
  TempDir temp;
  const std::vector<std::string> images = {"a/b.png", "a/c/d.png", "a-b.png", "a.png", "b.png"};
  std::vector<json> results;
  for (const std::string& image : images) {
    results.push_back(result_json(image, {prompt_json("cat", 30, kRamp)}));
  }
  const json error = {{"image", "a/broken.png"}, {"error", "not an image"}};
  const json unsharded = document_of(results, {error});

  // Round-robin shards, each finishing its images in its own order, one with the error.
  write_run_directory(temp.path() / "1", {results[3], results[0], error});
  write_run_directory(temp.path() / "2", {results[4], results[1]});
  write_run_directory(temp.path() / "3", {results[2]});
  const std::vector<std::string> shards = {
      (temp.path() / "3").string(), (temp.path() / "1").string(), (temp.path() / "2").string()};
  EXPECT_EQ(merge_runs(shards), unsharded);

  const fs::path output = temp.path() / "merged.json";
  std::ostringstream out;
  run_merge(output.string(), shards, out);
  EXPECT_EQ(out.str(), "merged 3 runs: 5 images, 1 errors -> " + output.string() + "\n");
  std::ifstream written(output);
  EXPECT_EQ(json::parse(written), unsharded);
  for (const auto& entry : fs::directory_iterator(temp.path())) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST(Merge, RefusesRunsThatAreNotOneJob) {
  TempDir temp;
  const json result = result_json("a.png", {prompt_json("cat", 30, kRamp)});
  json other_method = kHeader;
  other_method["method"]["start_layer"] = 0;
  write_run_directory(temp.path() / "job", {result});
  write_run_directory(temp.path() / "other", {}, other_method);
  write_run_directory(temp.path() / "again", {result});
  write_text(temp.path() / "headless" / "results.jsonl", "");

  const std::string job = (temp.path() / "job").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{job, (temp.path() / "other").string()}, "differ at /method/start_layer"},
      {{job, (temp.path() / "again").string()}, "image a.png has results in both"},
      {{(temp.path() / "headless").string()}, "no run header"}};
  for (const auto& [inputs, expected_message] : cases) {
    try {
      merge_runs(inputs);
      ADD_FAILURE() << "merged " << inputs.back();
    } catch (const Error& error) {
      EXPECT_EQ(error.category(), ErrorCategory::Input);
      EXPECT_NE(std::string(error.what()).find(expected_message), std::string::npos)
          << error.what();
    }
  }
}

}  // namespace
}  // namespace clipxai
