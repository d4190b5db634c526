#include "clipxai/html_report.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

namespace clipxai {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

size_t count_of(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

json prompt_json(const std::string& text, const json& overlay,
                 const std::vector<std::pair<std::string, double>>& tokens) {
  json token_list = json::array();
  for (const auto& [token, relevance] : tokens) {
    token_list.push_back({{"token", token}, {"relevance", relevance}});
  }
  return {{"text", text},         {"logit", 27.125},    {"cosine", 0.27125},
          {"probability", 0.875}, {"peak", {12, 7}},    {"tokens", token_list},
          {"truncated", false},   {"overlay", overlay}, {"raw", nullptr}};
}

json result_json(const std::string& image, const std::vector<json>& prompts) {
  return {{"image", image},
          {"width", 64},
          {"height", 48},
          {"crop", {{"x", 8}, {"y", 0}, {"width", 48}, {"height", 48}}},
          {"prompts", prompts}};
}

json document_of(const std::vector<json>& results, const std::vector<json>& errors) {
  return {{"model", {{"name", "tiny-vit"}, {"resolution", 32}}},
          {"method", {{"name", "chefer2021-gradient-rollout"}, {"start_layer", 1}}},
          {"results", results},
          {"errors", errors}};
}

const std::vector<std::pair<std::string, double>> kTokens = {{"a", 0.25}, {"cat", 0.75}};

// Text a hostile or unlucky user could put in file names, prompts and tokens; none of it may
// become markup.
const std::vector<std::string> kHostileTexts = {"<script>alert('x')</script>.png",
                                                "\"><img src=x onerror=alert(1)>",
                                                "a <b>dog</b> & co", "</li><script>x</script>"};

TEST(HtmlReport, EscapesEveryTextFromTheDocument) {
  std::vector<json> results;
  for (const std::string& text : kHostileTexts) {
    results.push_back(result_json(text, {prompt_json(text, "out/" + text, {{text, 1.0}})}));
  }
  std::vector<json> errors;
  for (const std::string& text : kHostileTexts) {
    errors.push_back({{"image", text}, {"error", text}});
  }
  const std::string page = html_report(document_of(results, errors), "out");
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("<img src=x"), std::string::npos);
  EXPECT_EQ(page.find("<b>"), std::string::npos);
  EXPECT_EQ(page.find("'x'"), std::string::npos);
  EXPECT_GT(count_of(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;.png"), 0u);
  EXPECT_GT(count_of(page, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), 0u);
  EXPECT_GT(count_of(page, "a &lt;b&gt;dog&lt;/b&gt; &amp; co"), 0u);
  // Every element the page opens is one of its own.
  const std::regex tag("<([a-z0-9]+)");
  const std::set<std::string> allowed = {"html", "head",       "meta", "title",   "style", "body",
                                         "h1",   "h2",         "p",    "section", "div",   "figure",
                                         "img",  "figcaption", "span", "ul",      "li",    "code"};
  for (auto match = std::sregex_iterator(page.begin(), page.end(), tag);
       match != std::sregex_iterator(); ++match) {
    EXPECT_TRUE(allowed.count((*match)[1])) << (*match)[0];
  }
}

struct CountCase {
  std::string name;
  json document;
  std::vector<std::pair<std::string, size_t>> expected_counts;
};

class HtmlCountTest : public ::testing::TestWithParam<CountCase> {};

TEST_P(HtmlCountTest, ListsEveryImagePromptTokenAndError) {
  const std::string page = html_report(GetParam().document, "out");
  for (const auto& [needle, expected] : GetParam().expected_counts) {
    EXPECT_EQ(count_of(page, needle), expected) << needle;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Documents, HtmlCountTest,
    ::testing::Values(
        CountCase{"empty",
                  document_of({}, {}),
                  {{"class=\"result\"", 0},
                   {"class=\"overlay\"", 0},
                   {"class=\"error\"", 0},
                   {"0 images explained, 0 errors", 1}}},
        CountCase{
            "two_images_three_prompts_one_error",
            document_of({result_json("a.png", {prompt_json("cat", "out/a__cat.png", kTokens),
                                               prompt_json("dog", "out/a__dog.png", kTokens)}),
                         result_json("b.png", {prompt_json("cat", nullptr, kTokens)})},
                        {{{"image", "c.png"}, {"error", "truncated PNG"}}}),
            {{"class=\"result\"", 2},
             {"class=\"prompt\"", 3},
             {"class=\"overlay\"", 2},
             {"no overlay saved", 1},
             {"class=\"token\"", 6},
             {"class=\"error\"", 1},
             {"<code>c.png</code> \u00b7 error: truncated PNG", 1},
             {"2 images explained, 1 errors", 1},
             {"probability 87.5% \u00b7 logit 27.125 \u00b7 peak (12, 7)", 3},
             {"64 \u00d7 48 px \u00b7 model's view: 48 \u00d7 48 at (8, 0)", 2},
             {"name tiny-vit \u00b7 resolution 32", 1},
             {"name chefer2021-gradient-rollout \u00b7 start_layer 1", 1}}},
        // A partial document shows what it has.
        CountCase{"missing_fields",
                  {{"results", {{{"image", "a.png"}, {"prompts", {{{"text", "cat"}}}}}}}},
                  {{"class=\"result\"", 1},
                   {"probability \u2013 \u00b7 logit \u2013", 1},
                   {"\u2013 \u00d7 \u2013 px", 1}}}),
    [](const auto& info) { return info.param.name; });

TEST(HtmlReport, ShadesTokensInProportionToRelevance) {
  const std::string page = html_report(
      document_of({result_json("a.png", {prompt_json("a cat", nullptr, kTokens)})}, {}), "out");
  EXPECT_EQ(count_of(page, "rgba(255, 140, 0, 0.333)\" title=\"relevance 0.25\">a</span>"), 1u);
  EXPECT_EQ(count_of(page, "rgba(255, 140, 0, 1.000)\" title=\"relevance 0.75\">cat</span>"), 1u);
}

struct LinkCase {
  std::string name;
  std::string overlay;  // relative to the current directory, as runs record it
  std::string report_directory;
  std::string expected_src;
};

class OverlayLinkTest : public ::testing::TestWithParam<LinkCase> {};

TEST_P(OverlayLinkTest, LinksRelativeToTheReportAndEncoded) {
  const LinkCase& c = GetParam();
  const std::string page =
      html_report(document_of({result_json("a.png", {prompt_json("cat", c.overlay, kTokens)})}, {}),
                  c.report_directory);
  EXPECT_EQ(count_of(page, "src=\"" + c.expected_src + "\""), 1u) << page;
}

INSTANTIATE_TEST_SUITE_P(
    Paths, OverlayLinkTest,
    ::testing::Values(
        LinkCase{"inside", "out/cats/a__cat.png", "out", "cats/a__cat.png"},
        LinkCase{"dot_segments", "out/./cats/../a__cat.png", "out/", "a__cat.png"},
        LinkCase{"outside", "elsewhere/a__cat.png", "out", "../elsewhere/a__cat.png"},
        LinkCase{"absolute", (fs::current_path() / "out/x.png").string(), "out", "x.png"},
        LinkCase{"awkward_names", "out/sub dir/a #1?%.png", "out", "sub%20dir/a%20%231%3F%25.png"},
        LinkCase{"non_ascii", "out/\u00fc/\u00df.png", "out", "%C3%BC/%C3%9F.png"},
        LinkCase{"quote", "out/it's \"x\".png", "out", "it%27s%20%22x%22.png"}),
    [](const auto& info) { return info.param.name; });

// The fixture report tests/cli/html_report_chromium.sh opens in a browser: real overlay files
// under awkward names, hostile prompts, an error. Written to $CLIPXAI_HTML_REPORT_DIR when set
// (and kept), otherwise to a temporary directory.
TEST(HtmlReport, FixtureReportLinksEveryOverlayToAFile) {
  const char* requested = std::getenv("CLIPXAI_HTML_REPORT_DIR");
  std::string temporary = (fs::temp_directory_path() / "clipxai-html-XXXXXX").string();
  const fs::path directory =
      requested ? fs::path(requested) : fs::path(::mkdtemp(temporary.data()));
  fs::create_directories(directory);

  const std::vector<std::pair<std::string, std::vector<std::string>>> images = {
      {"cats/tabby #1.jpg", {"a cat", kHostileTexts[1]}},
      {"\u00fcn\u00ef c\u00f6d\u00e9/\u00df 100%.png", {"a <b>dog</b> & co"}},
      {kHostileTexts[0], {"a cat"}}};
  std::vector<json> results;
  int overlay_index = 0;
  for (const auto& [image, prompts] : images) {
    std::vector<json> prompt_list;
    for (const std::string& prompt : prompts) {
      const fs::path overlay =
          directory / fs::path(image).parent_path() /
          (fs::path(image).stem().string() + "__" + std::to_string(overlay_index++) + ".png");
      fs::create_directories(overlay.parent_path());
      ASSERT_TRUE(cv::imwrite(overlay.string(), cv::Mat(48, 64, CV_8UC3, cv::Scalar(0, 128, 255))));
      prompt_list.push_back(prompt_json(prompt, overlay.string(), kTokens));
    }
    results.push_back(result_json(image, prompt_list));
  }
  const json document = document_of(results, {{{"image", "broken/" + kHostileTexts[3] + ".png"},
                                               {"error", "not an image: " + kHostileTexts[2]}}});
  const std::string html = html_report(document, directory.string());
  std::ofstream(directory / "report.html", std::ios::binary) << html;
  const std::regex source("src=\"([^\"]*)\"");
  size_t linked = 0;
  for (auto match = std::sregex_iterator(html.begin(), html.end(), source);
       match != std::sregex_iterator(); ++match, ++linked) {
    std::string decoded;
    const std::string url = (*match)[1];
    for (size_t i = 0; i < url.size(); ++i) {
      decoded +=
          url[i] == '%' ? static_cast<char>(std::stoi(url.substr(i + 1, 2), nullptr, 16)) : url[i];
      if (url[i] == '%') i += 2;
    }
    EXPECT_TRUE(fs::is_regular_file(directory / decoded)) << url;
  }
  EXPECT_EQ(linked, 4u);
  if (!requested) fs::remove_all(directory);
}

}  // namespace
}  // namespace clipxai
