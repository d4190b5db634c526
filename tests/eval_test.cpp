// clipxai eval: manifest parsing and its errors, the metrics on hand-made maps and regions, the
// summary, table and JSON, and an end-to-end run with the tiny random-weight model archive.
#include "clipxai/eval.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "clipxai/environment.h"
#include "clipxai/error.h"
#include "clipxai/relevance.h"
#include "clipxai/tokenizer.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

const std::string kEvalData = std::string(CLIPXAI_TEST_DATA) + "/eval";
const std::string kTinyModel = std::string(CLIPXAI_TEST_DATA) + "/model/tiny_vit.pt";

// ---- Manifest ----

TEST(Manifest, ParsesEntriesAndResolvesPathsAgainstTheManifestDirectory) {
  const Manifest manifest = parse_manifest(R"({"images": [
      {"image": "a.png", "prompts": ["dog", "cat"], "extra": 1,
       "objects": [{"text": "dog", "box": [1, 2.5, 30, 40], "mask": "m/dog.png"},
                   {"text": "cat", "box": [0, 0, 5, 5], "mask": null}]},
      {"image": "/abs/b.png", "prompts": ["girl"], "objects": []}]})",
                                           "data/set/m.json", /*allow_outside=*/true);
  EXPECT_EQ(manifest.path, "data/set/m.json");
  ASSERT_EQ(manifest.images.size(), 2u);
  const ManifestImage& first = manifest.images[0];
  EXPECT_EQ(first.image, "data/set/a.png");
  EXPECT_EQ(first.prompts, (std::vector<std::string>{"dog", "cat"}));
  ASSERT_EQ(first.objects.size(), 2u);
  EXPECT_EQ(first.objects[0].text, "dog");
  EXPECT_EQ(first.objects[0].box, (std::array<double, 4>{1, 2.5, 30, 40}));
  EXPECT_EQ(first.objects[0].mask, "data/set/m/dog.png");
  EXPECT_EQ(first.objects[1].mask, std::nullopt);
  EXPECT_EQ(manifest.images[1].image, "/abs/b.png");
  EXPECT_TRUE(manifest.images[1].objects.empty());
}

struct ManifestErrorCase {
  const char* name;
  std::string text;
  const char* message;  // the whole message after "m.json: "
};

class ManifestErrors : public ::testing::TestWithParam<ManifestErrorCase> {};

TEST_P(ManifestErrors, NameTheFileAndTheJsonLocation) {
  try {
    parse_manifest(GetParam().text, "m.json");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Input);
    EXPECT_EQ(std::string(error.what()).substr(0, 8), "m.json: ");
    EXPECT_EQ(std::string(error.what()).substr(8, std::string(GetParam().message).size()),
              GetParam().message);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Eval, ManifestErrors,
    ::testing::Values(
        ManifestErrorCase{"NotJson", "{images", "not valid JSON: "},
        ManifestErrorCase{"NotAnObject", "[]", "expected an object {\"images\": [...]}"},
        ManifestErrorCase{"ImagesNotArray", R"({"images": {}})",
                          "images: expected an array, got {}"},
        ManifestErrorCase{
            "LongValueShortened",
            R"({"images": "0123456789012345678901234567890123456789012345678901234567890123456789"})",
            "images: expected an array, got "
            "\"01234567890123456789012345678901234567890123456789012345678..."},
        ManifestErrorCase{"NoImages", R"({"images": []})", "images: no images listed"},
        ManifestErrorCase{"ImageNotObject", R"({"images": ["a.png"]})",
                          "images[0]: expected an object"},
        ManifestErrorCase{"ImageMissing", R"({"images": [{"prompts": ["a"], "objects": []}]})",
                          "images[0].image: missing"},
        ManifestErrorCase{"ImageEmpty",
                          R"({"images": [{"image": "", "prompts": ["a"], "objects": []}]})",
                          "images[0].image: expected a non-empty string, got \"\""},
        ManifestErrorCase{"PromptsMissing", R"({"images": [{"image": "a.png", "objects": []}]})",
                          "images[0].prompts: missing"},
        ManifestErrorCase{"NoPrompts",
                          R"({"images": [{"image": "a.png", "prompts": [], "objects": []}]})",
                          "images[0].prompts: no prompts listed"},
        ManifestErrorCase{"PromptNotText",
                          R"({"images": [{"image": "a.png", "prompts": [3], "objects": []}]})",
                          "images[0].prompts[0]: expected a non-empty string, got 3"},
        ManifestErrorCase{
            "PromptTwice",
            R"({"images": [{"image": "a.png", "prompts": ["a", "dog", "dog"], "objects": []}]})",
            "images[0].prompts[2]: \"dog\" is listed twice"},
        ManifestErrorCase{"ObjectsMissing", R"({"images": [{"image": "a.png", "prompts": ["a"]}]})",
                          "images[0].objects: missing"},
        ManifestErrorCase{"ObjectNotObject",
                          R"({"images": [{"image": "a.png", "prompts": ["a"], "objects": ["a"]}]})",
                          "images[0].objects[0]: expected an object with \"text\" and \"box\""},
        ManifestErrorCase{
            "BoxMissing",
            R"({"images": [{"image": "a.png", "prompts": ["a"], "objects": [{"text": "a"}]}]})",
            "images[0].objects[0]: missing \"box\""},
        ManifestErrorCase{"BoxThreeNumbers",
                          R"({"images": [{"image": "a.png", "prompts": ["a"], "objects": [
                              {"text": "a", "box": [0, 0, 1, 1]},
                              {"text": "a", "box": [0, 0, 1]}]}]})",
                          "images[0].objects[1].box: expected [x0, y0, x1, y1] with x0 < x1 and "
                          "y0 < y1, got [0,0,1]"},
        ManifestErrorCase{"BoxNotNumbers",
                          R"({"images": [{"image": "a.png", "prompts": ["a"], "objects": [
                              {"text": "a", "box": [0, 0, "1", 1]}]}]})",
                          "images[0].objects[0].box: expected [x0, y0, x1, y1]"},
        ManifestErrorCase{"BoxInverted",
                          R"({"images": [{"image": "a.png", "prompts": ["a"], "objects": [
                              {"text": "a", "box": [5, 0, 5, 1]}]}]})",
                          "images[0].objects[0].box: expected [x0, y0, x1, y1]"},
        ManifestErrorCase{"TextMissing",
                          R"({"images": [{"image": "a.png", "prompts": ["a"], "objects": [
                              {"box": [0, 0, 1, 1]}]}]})",
                          "images[0].objects[0].text: missing"},
        ManifestErrorCase{"NotJsonTooDeep", std::string(150, '[') + std::string(150, ']'),
                          "not valid JSON: nested deeper than 100 levels"},
        ManifestErrorCase{"NotJsonNumberOutOfRange", R"({"images": 1e400})",
                          "not valid JSON: [json.exception.out_of_range.406]"},
        ManifestErrorCase{
            "ImageAbsolute",
            R"({"images": [{"image": "/etc/passwd", "prompts": ["a"], "objects": []}]})",
            "images[0].image: /etc/passwd is outside the manifest's directory; pass "
            "--allow-outside"},
        ManifestErrorCase{
            "ImageClimbsOut",
            R"({"images": [{"image": "a/../../../../etc/passwd", "prompts": ["a"], "objects": []}]})",
            "images[0].image: a/../../../../etc/passwd is outside the manifest's directory"},
        ManifestErrorCase{
            "MaskClimbsOut",
            R"({"images": [{"image": "a.png", "prompts": ["a"], "objects": [
                              {"text": "a", "box": [0, 0, 1, 1], "mask": "../m.png"}]}]})",
            "images[0].objects[0].mask: ../m.png is outside the manifest's directory"},
        ManifestErrorCase{"MaskNotText",
                          R"({"images": [{"image": "a.png", "prompts": ["a"], "objects": [
                              {"text": "a", "box": [0, 0, 1, 1], "mask": 5}]}]})",
                          "images[0].objects[0].mask: expected a non-empty string, got 5"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Manifest, UnreadableFileIsAnInputErrorNamingIt) {
  const std::string path = kEvalData + "/no_such_manifest.json";
  try {
    load_manifest(path);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Input);
    EXPECT_EQ(std::string(error.what()), path + ": cannot read the manifest: does not exist");
  }
}

// ---- Metrics ----

struct BoxCase {
  const char* name;
  std::array<double, 4> box;
  cv::Rect expected;  // on a 4 x 3 image; empty when no pixel centre lies in the box
};

class BoxRegion : public ::testing::TestWithParam<BoxCase> {};

TEST_P(BoxRegion, HoldsThePixelsWhoseCentresLieInTheBox) {
  const cv::Mat region = box_region(GetParam().box, 4, 3);
  ASSERT_EQ(region.size(), cv::Size(4, 3));
  cv::Mat expected = cv::Mat::zeros(3, 4, CV_8U);
  expected(GetParam().expected).setTo(1);
  EXPECT_EQ(cv::countNonZero(region != expected), 0) << region;
}

INSTANTIATE_TEST_SUITE_P(
    Eval, BoxRegion,
    ::testing::Values(BoxCase{"WholeNumbersExclusiveEnd", {1, 1, 3, 2}, {1, 1, 2, 1}},
                      BoxCase{"CentresInside", {0.4, 0, 1.6, 1}, {0, 0, 2, 1}},
                      BoxCase{"NoCentreInside", {0.6, 0, 1.4, 3}, {}},
                      BoxCase{"ClippedToTheImage", {-5, -5, 100, 100}, {0, 0, 4, 3}},
                      BoxCase{"OutsideTheImage", {10, 0, 20, 3}, {}}),
    [](const auto& info) { return std::string(info.param.name); });

RelevanceMap make_map(std::vector<float> values, int width, int height, cv::Rect shown,
                      cv::Point peak) {
  return {cv::Mat(height, width, CV_32F, values.data()).clone(), shown, peak};
}

// 4 x 4, a 2 x 2 block of ones in the middle, seen whole.
RelevanceMap centre_block() {
  return make_map({0, 0, 0, 0,  //
                   0, 1, 1, 0,  //
                   0, 1, 1, 0,  //
                   0, 0, 0, 0},
                  4, 4, {0, 0, 4, 4}, {1, 1});
}

// The model saw columns 1-2 only (0 outside): column 1 at 0.5, column 2 at 1. Its mean over the
// shown pixels is 0.75, over the whole image 0.375 — column 1 lies between.
RelevanceMap seen_columns() {
  return make_map({0, 0.5f, 1, 0,  //
                   0, 0.5f, 1, 0,  //
                   0, 0.5f, 1, 0,  //
                   0, 0.5f, 1, 0},
                  4, 4, {1, 0, 2, 4}, {2, 0});
}

RelevanceMap flat() { return make_map(std::vector<float>(16, 0.0f), 4, 4, {0, 0, 4, 4}, {0, 0}); }

struct MetricCase {
  const char* name;
  RelevanceMap (*map)();
  std::array<double, 4> box;
  bool pointing;
  double energy;
  double iou;
};

class Metrics : public ::testing::TestWithParam<MetricCase> {};

TEST_P(Metrics, OnHandMadeMaps) {
  const RelevanceMap map = GetParam().map();
  const cv::Mat region = box_region(GetParam().box, 4, 4);
  EXPECT_EQ(peak_inside(map, region), GetParam().pointing);
  EXPECT_DOUBLE_EQ(energy_inside(map, region), GetParam().energy);
  EXPECT_DOUBLE_EQ(iou_above_mean(map, region), GetParam().iou);
}

INSTANTIATE_TEST_SUITE_P(
    Eval, Metrics,
    ::testing::Values(
        MetricCase{"BlockExactly", centre_block, {1, 1, 3, 3}, true, 1.0, 1.0},
        // Overlap of one pixel: union 4 + 4 - 1.
        MetricCase{"BlockQuarterTopLeft", centre_block, {0, 0, 2, 2}, true, 0.25, 1.0 / 7},
        MetricCase{"BlockQuarterBottomRight", centre_block, {2, 2, 4, 4}, false, 0.25, 1.0 / 7},
        MetricCase{"BlockMissed", centre_block, {0, 0, 4, 1}, false, 0.0, 0.0},
        // Two of the four pixels above the mean lie in the eight of the box: 2 / (4 + 8 - 2).
        MetricCase{"BlockInsideLargerBox", centre_block, {0, 0, 4, 2}, true, 0.5, 2.0 / 10},
        // Thresholded at the mean over the shown pixels, column 1 is not above it.
        MetricCase{"SeenColumnBelowMean", seen_columns, {1, 0, 2, 4}, false, 1.0 / 3, 0.0},
        MetricCase{"SeenColumnAboveMean", seen_columns, {2, 0, 3, 4}, true, 2.0 / 3, 1.0},
        MetricCase{"UnseenColumn", seen_columns, {3, 0, 4, 4}, false, 0.0, 0.0},
        // A flat map points at its first pixel and has no mass and nothing above its mean.
        MetricCase{"FlatMapAtFirstPixel", flat, {0, 0, 1, 1}, true, 0.0, 0.0},
        MetricCase{"FlatMapElsewhere", flat, {1, 1, 4, 4}, false, 0.0, 0.0}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Metrics, MaskRegionsCountAnyNonZeroPixel) {
  cv::Mat mask = cv::Mat::zeros(4, 4, CV_8U);
  mask.at<uchar>(1, 1) = 255;  // (x 1, y 1): the peak
  mask.at<uchar>(2, 2) = 7;
  EXPECT_TRUE(peak_inside(centre_block(), mask));
  EXPECT_DOUBLE_EQ(energy_inside(centre_block(), mask), 0.5);
  EXPECT_DOUBLE_EQ(iou_above_mean(centre_block(), mask), 0.5);
}

struct RankCase {
  const char* name;
  std::vector<double> logits;
  size_t own;
  std::vector<size_t> rivals;
  bool first;
};

class RankedFirst : public ::testing::TestWithParam<RankCase> {};

TEST_P(RankedFirst, NeedsAStrictlyHigherLogitThanEveryRival) {
  EXPECT_EQ(ranked_first(GetParam().logits, GetParam().own, GetParam().rivals), GetParam().first);
}

INSTANTIATE_TEST_SUITE_P(Eval, RankedFirst,
                         ::testing::Values(RankCase{"AboveAll", {3, 1, 2}, 0, {1, 2}, true},
                                           RankCase{"BelowOne", {3, 1, 2}, 2, {0, 1}, false},
                                           // Prompts of other present objects are no rivals.
                                           RankCase{
                                               "OnlyAbsentRivalsCount", {3, 1, 2}, 2, {1}, true},
                                           RankCase{"TieIsNotFirst", {2, 2}, 0, {1}, false},
                                           RankCase{"NoRivals", {1}, 0, {}, true}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- Summary, table, JSON ----

std::vector<ObjectResult> three_objects() {
  return {
      {"a.png", "dog", 0, {1, 2}, true, true, 0.5, 0.25, true, 0.125, 0.75},
      {"a.png", "cat", 1, {3, 4}, false, true, 0.25, 0.5, false, 0.375, 0.25},
      {"b.png", "girl", 0, {5, 6}, true, false, 0.75, 0.0, std::nullopt},
  };
}

TEST(Summary, CountsHitsAndSumsScores) {
  const MetricSummary summary = summarize(three_objects());
  EXPECT_EQ(summary.objects, 3);
  EXPECT_EQ(summary.pointing_hits, 2);
  EXPECT_EQ(summary.pointing_box_hits, 2);
  EXPECT_DOUBLE_EQ(summary.energy_sum, 1.5);
  EXPECT_DOUBLE_EQ(summary.iou_sum, 0.75);
  EXPECT_EQ(summary.top1_objects, 2);
  EXPECT_EQ(summary.top1_hits, 1);
  EXPECT_EQ(rate(3, 4), 0.75);
  EXPECT_EQ(rate(0, 0), std::nullopt);
}

EvalReport small_report() {
  EvalReport report;
  report.manifest = "m.json";
  report.model_path = "models/m.pt";
  report.model.name = "m";
  report.model.vision_layers = 6;
  report.model.text_layers = 4;
  report.tokenizer_source = "embedded";
  report.images = 3;
  report.unprompted_objects = 1;
  const nlohmann::json last = {{"name", "chefer2021-gradient-rollout"},
                               {"start_layer", 5},
                               {"start_layer_text", 3},
                               {"crop", "center"}};
  nlohmann::json all = last;
  all["start_layer"] = 0;
  SettingResult last_layer{{"chefer2021", {{"start_layer", -1}}},
                           last,
                           describe_layers(5, report.model.vision_layers),
                           three_objects(),
                           summarize(three_objects())};
  last_layer.explain_seconds = 0.25;
  last_layer.images = 2;
  last_layer.deletion_curve = {0.5, 0.25, 0};
  last_layer.insertion_curve = {0, 0.5, 1};
  last_layer.sanity = {0.5, std::nullopt};
  report.settings.push_back(last_layer);
  SettingResult all_layers{{"chefer2021", {{"start_layer", 0}}},
                           all,
                           describe_layers(0, report.model.vision_layers),
                           {},
                           {}};
  all_layers.sanity = {0.25, -0.125};
  report.settings.push_back(all_layers);
  report.errors.push_back({"c.png", ErrorCategory::Input, "c.png: not an image"});
  return report;
}

TEST(Report, TableHasOneRowPerSetting) {
  std::ostringstream table;
  print_eval_table(small_report(), table);
  EXPECT_EQ(table.str(),
            "Manifest m.json: 3 images, 1 failed; objects not among their image's prompts: 1\n"
            "Model m (models/m.pt), crop center\n"
            "\n"
            "method      setting           objects  pointing  pointing(box)  energy   mIoU  "
            "deletion  insertion  ms/image  top1-vs-absent\n"
            "chefer2021  last layer (5)          3     0.667          0.667   0.500  0.250     "
            "0.250      0.500     125.0  0.500 of 2\n"
            "chefer2021  all layers (0-5)        0         -              -       -      -        "
            " -          -         -  - of 0\n"
            "\n"
            "Model randomisation (Spearman correlation with the trained model's maps; the top k "
            "vision blocks re-initialised):\n"
            "method      setting              k=1     k=2\n"
            "chefer2021  last layer (5)     0.500       -\n"
            "chefer2021  all layers (0-5)   0.250  -0.125\n"
            "error: c.png: not an image\n");
}

TEST(Report, JsonHasRatesCountsAndPerObjectResults) {
  const nlohmann::json json = to_json(small_report());
  EXPECT_EQ(json["manifest"], "m.json");
  EXPECT_EQ(json["model"]["path"], "models/m.pt");
  EXPECT_EQ(json["crop"], "center");
  EXPECT_EQ(json["images"], 3);
  EXPECT_EQ(json["failed_images"], 1);
  EXPECT_EQ(json["unprompted_objects"], 1);
  ASSERT_EQ(json["settings"].size(), 2u);
  const nlohmann::json& last = json["settings"][0];
  EXPECT_EQ(last["label"], "last layer (5)");
  EXPECT_EQ(last["method"]["start_layer"], 5);
  EXPECT_EQ(last["objects"], 3);
  EXPECT_DOUBLE_EQ(last["pointing"].get<double>(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(last["energy"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(last["miou"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(last["top1_vs_absent"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(last["deletion_auc"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(last["insertion_auc"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(last["ms_per_image"].get<double>(), 125);
  EXPECT_EQ(last["deletion_curve"], (nlohmann::json{0.5, 0.25, 0}));
  EXPECT_EQ(last["sanity"], (nlohmann::json{{{"randomised_blocks", 1}, {"spearman", 0.5}},
                                            {{"randomised_blocks", 2}, {"spearman", nullptr}}}));
  EXPECT_EQ(last["top1_objects"], 2);
  EXPECT_EQ(last["hits"],
            (nlohmann::json{{"pointing", 2}, {"pointing_box", 2}, {"top1_vs_absent", 1}}));
  ASSERT_EQ(last["per_object"].size(), 3u);
  EXPECT_EQ(last["per_object"][0], (nlohmann::json{{"image", "a.png"},
                                                   {"text", "dog"},
                                                   {"peak", {1, 2}},
                                                   {"pointing", true},
                                                   {"pointing_box", true},
                                                   {"energy", 0.5},
                                                   {"iou", 0.25},
                                                   {"top1_vs_absent", true},
                                                   {"deletion_auc", 0.125},
                                                   {"insertion_auc", 0.75}}));
  EXPECT_TRUE(last["per_object"][2]["top1_vs_absent"].is_null());
  const nlohmann::json& all = json["settings"][1];
  EXPECT_TRUE(all["pointing"].is_null());
  EXPECT_TRUE(all["top1_vs_absent"].is_null());
  EXPECT_TRUE(all["deletion_auc"].is_null());
  EXPECT_TRUE(all["ms_per_image"].is_null());
  EXPECT_EQ(all["deletion_curve"], nlohmann::json::array());
  ASSERT_EQ(json["errors"].size(), 1u);
  EXPECT_EQ(json["errors"][0]["image"], "c.png");
}

// ---- End to end with the tiny random-weight archive (tests/data/model, from the model module) --

class EndToEnd : public ::testing::Test {
 protected:
  static std::optional<int> start_layer_of(const SettingResult& result) {
    const auto& parameters = result.setting.parameters;
    if (!parameters.contains("start_layer")) return std::nullopt;
    return parameters["start_layer"].get<int>();
  }

  void SetUp() override {
    if (!fs::exists(kTinyModel)) GTEST_SKIP() << kTinyModel << " is absent";
  }

  EvalOptions options(const std::string& manifest) const {
    EvalOptions options;
    options.manifest = manifest;
    options.model = kTinyModel;
    // The model's default (its last layer), all layers.
    options.settings = start_layer_settings({std::nullopt, 0});
    return options;
  }

  // What explain_image and upsample_map give for one image and its prompts.
  static std::vector<std::pair<RelevanceMap, double>> explain_directly(
      const std::string& image_path, const std::vector<std::string>& texts,
      std::optional<int> start_layer) {
    const ClipModel model = ClipModel::load(kTinyModel);
    const ModelConfig& config = model.config();
    const Tokenizer tokenizer =
        load_tokenizer("", model.embedded_vocabulary(), model.path(), config.vocab_size);
    std::vector<TokenizedText> prompts;
    for (const std::string& text : texts) {
      prompts.push_back(tokenizer.tokenize(text, config.context_length));
    }
    const DecodedImage image = load_image(image_path);
    const PreprocessedImage input = preprocess(
        image, {config.input_resolution, config.image_mean, config.image_std}, CropMode::Center);
    std::vector<std::pair<RelevanceMap, double>> out;
    for (const PromptRelevance& relevance :
         explain_image(model, input.pixels, prompts, {start_layer, std::nullopt})) {
      out.emplace_back(upsample_map(relevance.grid, input.crop, image.width(), image.height()),
                       relevance.logit);
    }
    return out;
  }
};

TEST_F(EndToEnd, MeasuresEveryPromptedObjectAndRecordsUnreadableImages) {
  EvalOptions run = options(kEvalData + "/manifest.json");
  std::ostringstream progress;
  run.progress = ProgressStyle::Lines;
  run.progress_out = &progress;
  const EvalReport report = run_eval(run);
  // The progress lines of a batch run: at the first image and at the end, with the failed image.
  EXPECT_EQ(progress.str().rfind("clipxai: 1/3 images (33%)", 0), 0u) << progress.str();
  EXPECT_NE(progress.str().find("\nclipxai: 3/3 images (100%), "), std::string::npos)
      << progress.str();
  EXPECT_NE(progress.str().find(", 1 failed\n"), std::string::npos) << progress.str();
  EXPECT_EQ(report.images, 3);
  EXPECT_EQ(report.unprompted_objects, 1);  // "a boy" in wide.png
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].image, kEvalData + "/not_an_image.png");
  EXPECT_EQ(report.errors[0].category, ErrorCategory::Input);
  EXPECT_NE(std::string(report.errors[0].message).find("not_an_image.png"), std::string::npos);

  ASSERT_EQ(report.settings.size(), 2u);
  EXPECT_EQ(report.settings[0].label, "last layer (2), the model's default");
  EXPECT_GT(report.settings[0].explain_seconds, 0);
  EXPECT_EQ(report.settings[0].images, 2);
  EXPECT_EQ(report.settings[1].label, "all layers (0-2)");
  const cv::Mat dog_mask = cv::imread(kEvalData + "/square_dog_mask.png", cv::IMREAD_GRAYSCALE);
  for (const SettingResult& setting : report.settings) {
    SCOPED_TRACE(setting.label);
    ASSERT_EQ(setting.objects.size(), 3u);
    const ObjectResult& wide_dog = setting.objects[0];
    const ObjectResult& square_dog = setting.objects[1];
    const ObjectResult& square_cats = setting.objects[2];
    EXPECT_EQ(wide_dog.text, "a dog");
    EXPECT_EQ(square_dog.text, "a dog");
    EXPECT_EQ(square_cats.text, "a cat");

    // wide.png: the box is the whole image, so everything lands inside it.
    const auto wide = explain_directly(kEvalData + "/wide.png", {"a dog", "a cat", "a girl"},
                                       start_layer_of(setting));
    EXPECT_EQ(wide_dog.peak, wide[0].first.peak);
    EXPECT_TRUE(wide_dog.pointing);
    EXPECT_DOUBLE_EQ(wide_dog.energy, 1.0);
    EXPECT_EQ(wide_dog.top1_vs_absent, wide[0].second > std::max(wide[1].second, wide[2].second));

    // square.png: the dog is measured on its mask, the two cats on the union of their boxes; both
    // prompts name objects, so there is no absent prompt to rank against.
    const auto square =
        explain_directly(kEvalData + "/square.png", {"a dog", "a cat"}, start_layer_of(setting));
    const cv::Point dog_peak = square[0].first.peak;
    EXPECT_EQ(square_dog.peak, dog_peak);
    EXPECT_EQ(square_dog.pointing, dog_mask.at<uchar>(dog_peak) != 0);
    EXPECT_EQ(square_dog.pointing_box, cv::Rect(4, 4, 16, 16).contains(dog_peak));
    EXPECT_EQ(square_dog.top1_vs_absent, std::nullopt);
    const cv::Point cat_peak = square[1].first.peak;
    EXPECT_EQ(square_cats.peak, cat_peak);
    EXPECT_EQ(square_cats.pointing, cv::Rect(16, 8, 16, 16).contains(cat_peak) ||
                                        cv::Rect(0, 24, 8, 8).contains(cat_peak));
    EXPECT_EQ(square_cats.pointing, square_cats.pointing_box);

    EXPECT_EQ(setting.summary.objects, 3);
    EXPECT_EQ(setting.summary.top1_objects, 1);
  }
  const nlohmann::json json = to_json(report);
  EXPECT_EQ(json["failed_images"], 1);
  EXPECT_EQ(json["settings"][0]["per_object"].size(), 3u);
}

// Writes `text` as <name>.json in a scratch directory; its relative paths resolve there.
std::string write_manifest(const std::string& name, const std::string& text) {
  const fs::path directory = fs::path(::testing::TempDir()) / "clipxai_eval_test";
  fs::create_directories(directory);
  const fs::path path = directory / (name + ".json");
  std::ofstream(path) << text;
  return path.string();
}

struct RunErrorCase {
  const char* name;
  const char* manifest;  // "%" stands for tests/data/eval
  const char* model;     // empty: the tiny archive
  std::vector<std::optional<int>> start_layers;
  ErrorCategory category;
  const char* message_part;
};

class RunErrors : public ::testing::TestWithParam<RunErrorCase> {};

TEST_P(RunErrors, StopTheRunWithTheRightCategory) {
  if (!fs::exists(kTinyModel)) GTEST_SKIP() << kTinyModel << " is absent";
  std::string manifest = GetParam().manifest;
  for (size_t at; (at = manifest.find('%')) != std::string::npos;) {
    manifest.replace(at, 1, kEvalData);
  }
  EvalOptions options;
  options.manifest = write_manifest(GetParam().name, manifest);
  options.allow_outside = true;  // the manifest, in a scratch folder, names the test images
  options.model = *GetParam().model ? GetParam().model : kTinyModel;
  options.settings = start_layer_settings(GetParam().start_layers);
  try {
    run_eval(options);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), GetParam().category) << error.what();
    EXPECT_NE(std::string(error.what()).find(GetParam().message_part), std::string::npos)
        << error.what();
  }
}

constexpr const char* kGoodManifest =
    R"({"images": [{"image": "%/square.png", "prompts": ["a dog"], "objects": []}]})";

INSTANTIATE_TEST_SUITE_P(
    Eval, RunErrors,
    ::testing::Values(
        // The manifest is read first, so a bad one is reported even with a bad model.
        RunErrorCase{"BadManifestBeforeModel",
                     R"({"images": []})",
                     "/no/such/model.pt",
                     {-1},
                     ErrorCategory::Input,
                     "images: no images listed"},
        RunErrorCase{"MissingModel",
                     kGoodManifest,
                     "/no/such/model.pt",
                     {-1},
                     ErrorCategory::Model,
                     "/no/such/model.pt"},
        RunErrorCase{"StartLayerBeyondTheModel",
                     kGoodManifest,
                     "",
                     {-1, 3},
                     ErrorCategory::Usage,
                     "start layer 3 is out of range for the vision tower of 3 layers"},
        RunErrorCase{
            "NoSettings", kGoodManifest, "", {}, ErrorCategory::Usage, "at least one setting"},
        RunErrorCase{"PromptWithoutTokens",
                     R"({"images": [{"image": "%/square.png", "prompts": ["a dog", "  "],
                         "objects": []}]})",
                     "",
                     {-1},
                     ErrorCategory::Input,
                     "images[0].prompts[1]: \"  \" has no tokens"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(RegionErrors, BoxOutsideTheImageOrBadMaskIsThatImagesError) {
  if (!fs::exists(kTinyModel)) GTEST_SKIP() << kTinyModel << " is absent";
  EvalOptions options;
  options.model = kTinyModel;
  options.allow_outside = true;  // the manifest, in a scratch folder, names the test images
  options.manifest = write_manifest("region_errors", std::string(R"({"images": [
      {"image": ")") + kEvalData + R"(/square.png", "prompts": ["a dog"],
       "objects": [{"text": "a dog", "box": [40, 0, 50, 10]}]},
      {"image": ")" + kEvalData + R"(/wide.png", "prompts": ["a dog"],
       "objects": [{"text": "a dog", "box": [0, 0, 4, 4], "mask": ")" +
                                                         kEvalData + R"(/square_dog_mask.png"}]},
      {"image": ")" + kEvalData + R"(/square.png", "prompts": ["a dog"],
       "objects": [{"text": "a dog", "box": [0, 0, 4, 4], "mask": "no_such_mask.png"}]},
      {"image": ")" + kEvalData + R"(/square.png", "prompts": ["a dog"],
       "objects": [{"text": "a dog", "box": [0, 0, 4, 4], "mask": "/dev/zero"}]}]})");
  const EvalReport report = run_eval(options);
  ASSERT_EQ(report.errors.size(), 4u);
  EXPECT_NE(report.errors[0].message.find("images[0].objects[0].box lies outside the 32x32 image"),
            std::string::npos)
      << report.errors[0].message;
  EXPECT_NE(report.errors[1].message.find("square_dog_mask.png: mask is 32x32, its image 48x32"),
            std::string::npos)
      << report.errors[1].message;
  EXPECT_NE(report.errors[2].message.find("no_such_mask.png: cannot read the mask: does not exist"),
            std::string::npos)
      << report.errors[2].message;
  EXPECT_EQ(report.errors[3].message,
            "/dev/zero: cannot read the mask: is not a regular file (a FIFO, socket or device)");
  EXPECT_EQ(report.settings[0].summary.objects, 0);
}

}  // namespace
}  // namespace clipxai
