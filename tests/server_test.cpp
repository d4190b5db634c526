// The server's reading of a POST /api/explain form (server.h): what each field becomes, and the
// status and message of each form it refuses. The HTTP side is tests/cli/serve_api.sh's.
#include "clipxai/server.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace clipxai {
namespace {

const std::string kPng = "\x89PNG\r\n\x1a\n fake";

std::vector<ExampleImage> examples() { return {{"scene.png", kPng}}; }

const PhraseParser& parser() {
  static const PhraseParser shared;
  return shared;
}

ServerLimits limits() {
  ServerLimits limits;
  limits.max_prompts = 4;
  limits.max_prompt_bytes = 30;
  limits.max_upload_bytes = 1000;
  return limits;
}

TEST(ExplainForm, ReadsEveryField) {
  const ExplainRequest request = parse_explain_form({{"image", kPng, "photo.png"},
                                                     {"prompt", "a dog", ""},
                                                     {"prompt", "a cat", ""},
                                                     {"method", "legrad", ""},
                                                     {"start_layer", "2", ""},
                                                     {"param", "target=logit", ""},
                                                     {"contrast", "a car", ""},
                                                     {"crop", "PAD", ""},
                                                     {"alpha", "0.25", ""},
                                                     {"colormap", "viridis", ""},
                                                     {"layers", "true", ""}},
                                                    limits(), examples(), &parser());
  EXPECT_EQ(request.image_name, "photo.png");
  EXPECT_EQ(request.image_bytes, kPng);
  EXPECT_EQ(request.prompts, (std::vector<std::string>{"a dog", "a cat"}));
  EXPECT_TRUE(request.spans.empty());
  EXPECT_EQ(request.settings.method, "legrad");
  EXPECT_EQ(request.settings.parameters["start_layer"], 2);
  EXPECT_EQ(request.settings.parameters["target"], "logit");
  EXPECT_EQ(request.settings.contrast, std::optional<std::string>("a car"));
  EXPECT_EQ(request.settings.crop, CropMode::Pad);
  EXPECT_DOUBLE_EQ(request.overlay.alpha, 0.25);
  EXPECT_EQ(request.overlay.colormap, colormaps_by_name().at("viridis"));
  EXPECT_TRUE(request.layers);
}

TEST(ExplainForm, AnExampleAndASentenceStandForAnUploadAndPrompts) {
  const ExplainRequest request = parse_explain_form(
      {{"example", "scene.png", ""}, {"prompt", "a dog", ""}, {"phrases", "a girl and a boy", ""}},
      limits(), examples(), &parser());
  EXPECT_EQ(request.image_name, "scene.png");
  EXPECT_EQ(request.image_bytes, kPng);
  EXPECT_EQ(request.prompts,
            (std::vector<std::string>{"a dog", "a girl and a boy", "a girl", "a boy"}));
  ASSERT_EQ(request.spans.size(), 4u);
  EXPECT_FALSE(request.spans[0] || request.spans[1]);
  EXPECT_EQ(request.spans[3]->start, 11u);
  EXPECT_EQ(request.settings.method, "chefer2021");
  EXPECT_FALSE(request.layers);
}

TEST(ExplainForm, RefusesEachBadFormWithItsStatus) {
  struct Refused {
    std::string what;
    std::vector<FormField> fields;
    int status;
    std::string message;
  };
  const FormField image{"image", kPng, "p.png"};
  const FormField prompt{"prompt", "a dog", ""};
  const std::vector<Refused> cases = {
      {"no image", {prompt}, 400, "no image"},
      {"image and example", {image, {"example", "scene.png", ""}, prompt}, 400, "not both"},
      {"empty image", {{"image", "", "e.png"}, prompt}, 400, "is empty (0 bytes)"},
      {"unknown example", {{"example", "../etc/passwd", ""}, prompt}, 400, "unknown example"},
      {"no prompt", {image}, 400, "no prompts"},
      {"unknown field", {image, prompt, {"colour", "red", ""}}, 400, "unknown field 'colour'"},
      {"repeated field",
       {image, prompt, {"crop", "pad", ""}, {"crop", "center", ""}},
       400,
       "given twice"},
      {"bad crop", {image, prompt, {"crop", "zoom", ""}}, 400, "field 'crop'"},
      {"bad alpha", {image, prompt, {"alpha", "2", ""}}, 400, "field 'alpha'"},
      {"NaN alpha", {image, prompt, {"alpha", "nan", ""}}, 400, "field 'alpha'"},
      {"bad colormap", {image, prompt, {"colormap", "rainbow2", ""}}, 400, "field 'colormap'"},
      {"bad layers", {image, prompt, {"layers", "maybe", ""}}, 400, "field 'layers'"},
      {"bad start layer", {image, prompt, {"start_layer", "1.5", ""}}, 400, "start_layer"},
      {"param without =", {image, prompt, {"param", "target", ""}}, 400, "NAME=VALUE"},
      {"param twice",
       {image, prompt, {"param", "a=1", ""}, {"param", "a=2", ""}},
       400,
       "given twice"},
      {"too many prompts",
       {image, prompt, prompt, prompt, prompt, prompt},
       413,
       "over the limit of 4 (--max-prompts)"},
      {"phrases over the prompt limit",
       {image, prompt, prompt, {"phrases", "a girl and a boy", ""}},
       413,
       "5 prompts"},
      {"long prompt", {image, {"prompt", std::string(31, 'a'), ""}}, 413, "--max-prompt-bytes"},
      {"long contrast",
       {image, prompt, {"contrast", std::string(31, 'a'), ""}},
       413,
       "--max-prompt-bytes"},
      {"long sentence", {image, {"phrases", std::string(31, 'a'), ""}}, 413, "--max-prompt-bytes"},
      {"big form",
       {{"image", std::string(1001, 'x'), "big.png"}, prompt},
       413,
       "--max-upload-bytes"},
  };
  for (const Refused& c : cases) {
    SCOPED_TRACE(c.what);
    try {
      parse_explain_form(c.fields, limits(), examples(), &parser());
      ADD_FAILURE() << "accepted";
    } catch (const Error& error) {
      EXPECT_EQ(http_status(error), c.status) << error.what();
      EXPECT_NE(std::string(error.what()).find(c.message), std::string::npos) << error.what();
    }
  }
}

TEST(ExplainForm, TextThatIsNotUtf8IsUnprocessable) {
  try {
    parse_explain_form({{"image", kPng, "p.png"}, {"phrases", "a \xff dog", ""}}, limits(),
                       examples(), &parser());
    ADD_FAILURE() << "accepted";
  } catch (const Error& error) {
    EXPECT_EQ(http_status(error), 422) << error.what();
  }
}

TEST(HttpStatus, FollowsTheCategoryUnlessTheErrorSaysOtherwise) {
  EXPECT_EQ(http_status(usage_error("x")), 400);
  EXPECT_EQ(http_status(input_error("x")), 422);
  EXPECT_EQ(http_status(model_error("x")), 500);
  EXPECT_EQ(http_status(Error(ErrorCategory::Internal, "x")), 500);
  EXPECT_EQ(http_status(RequestError(503, ErrorCategory::Internal, "busy")), 503);
}

}  // namespace
}  // namespace clipxai
