// Every explanation method against an independent PyTorch implementation written from its paper
// and its authors' code (scripts/reference_methods.py -> tests/data/model/*.methods.json) on the
// random-weight archives, fp32 and fp16: the raw grids and token relevances, with and without a
// contrast text, all prompts traced together or each alone (relevance.h's chunks), to 1e-4
// relative. Then what each method must refuse (unknown names and
// parameters, values out of range, a contrast it cannot honour), naming itself and the option.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "clipxai/cli.h"
#include "clipxai/error.h"
#include "clipxai/method.h"
#include "clipxai/relevance.h"
#include "model_reference.h"

namespace clipxai {
namespace {

using testing::model_data;
using testing::Reference;
using testing::relative_error;
using testing::to_tensor;

constexpr double kTolerance = 1e-4;  // max|a-b| / max|b|, grids and token relevances alike

// relative_error, or the absolute error where the expected values are all zero (a ReLU'd
// relevance with nothing positive).
double error_against(const torch::Tensor& actual, const torch::Tensor& expected) {
  if (expected.abs().max().item<double>() == 0) return actual.abs().max().item<double>();
  return relative_error(actual, expected);
}

std::vector<std::string> methods_files() {
  std::vector<std::string> files;
  for (const std::string& reference : testing::reference_files()) {
    const std::string methods = reference.substr(0, reference.size() - 15) + ".methods.json";
    if (std::filesystem::exists(methods)) files.push_back(methods);
  }
  return files;
}

class ReferenceMethods : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceMethods, MatchTheAuthorsAlgorithms) {
  nlohmann::json methods;
  std::ifstream(GetParam()) >> methods;
  const Reference reference(model_data(methods["reference"].get<std::string>()));
  const auto model = ClipModel::load(reference.archive());
  const auto images = reference.images();
  const auto prompts = reference.prompts();
  const TokenizedText contrast = testing::stored_prompt(methods["contrast"]);
  ASSERT_GE(methods["cases"].size(), 13u);
  std::map<std::string, double> worst;
  for (const auto& expected : methods["cases"]) {
    const std::string name = expected["method"].get<std::string>();
    const bool contrasted = expected["contrast"].get<bool>();
    SCOPED_TRACE(name + " " + expected["parameters"].dump() + (contrasted ? " contrast" : "") +
                 " image " + std::to_string(expected["image"].get<int>()));
    // One trace for all prompts, and one per prompt: chunking must not change a result.
    for (const size_t prompts_per_trace : {kPromptsPerTrace, size_t{1}}) {
      const PreparedPrompts prepared =
          prepare_prompts(model, prompts, create_method(name, expected["parameters"], model),
                          nullptr, contrasted ? &contrast : nullptr, prompts_per_trace);
      ASSERT_EQ(prepared.chunks.size(), prompts_per_trace == 1 ? prompts.size() : 1u);
      const auto results = explain_image(model, images[expected["image"].get<int>()], prepared);
      ASSERT_EQ(results.size(), prompts.size());
      for (size_t p = 0; p < prompts.size(); ++p) {
        SCOPED_TRACE("prompt " + std::to_string(p) + ", " + std::to_string(prompts_per_trace) +
                     " per trace");
        const auto grid = to_tensor(expected["grids"][p]);
        ASSERT_EQ(results[p].grid.sizes(), grid.sizes());
        const double grid_error = error_against(results[p].grid, grid);
        EXPECT_LT(grid_error, kTolerance);
        double& method_worst = worst[name];
        method_worst = std::max(method_worst, grid_error);
        if (expected["text_relevance"].is_null()) {
          EXPECT_FALSE(results[p].has_token_relevance);
          continue;
        }
        ASSERT_TRUE(results[p].has_token_relevance);
        const auto text = to_tensor(expected["text_relevance"][p]);
        ASSERT_EQ(results[p].token_relevance.size(), static_cast<size_t>(text.numel()));
        const double text_error = error_against(torch::tensor(results[p].token_relevance), text);
        EXPECT_LT(text_error, kTolerance);
        method_worst = std::max(method_worst, text_error);
      }
    }
  }
  for (const auto& [name, error] : worst) {
    std::cout << testing::reference_name(GetParam()) << " " << name << ": worst relative error "
              << error << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Archives, ReferenceMethods, ::testing::ValuesIn(methods_files()),
                         [](const auto& info) { return testing::reference_name(info.param); });

TEST(Methods, AreRegisteredUnderTheirCommandLineNames) {
  std::vector<std::string> names;
  for (const MethodInfo& info : methods()) names.push_back(info.name);
  EXPECT_EQ(names, (std::vector<std::string>{"chefer2021", "rollout", "attention", "gradcam",
                                             "legrad", "grad-eclip"}));
  const auto model = ClipModel::load(model_data("tiny_vit.pt"));
  for (const std::string& name : names) {
    const auto described = create_method(name, nullptr, model)->description();
    EXPECT_EQ(described["name"].get<std::string>().rfind(name, 0), 0u) << described.dump();
  }
}

struct Refusal {
  std::string method;
  nlohmann::json parameters;
  bool contrast;
  std::vector<std::string> message_parts;
};

class MethodRefusals : public ::testing::TestWithParam<Refusal> {};

TEST_P(MethodRefusals, AreUsageErrorsNamingMethodAndOption) {
  const Refusal& refusal = GetParam();
  const auto model = ClipModel::load(model_data("tiny_vit.pt"));
  const Reference reference(model_data("tiny_vit.reference.json"));
  auto prompts = reference.prompts();
  const TokenizedText contrast = prompts.back();
  prompts.pop_back();
  try {
    const auto prepared = prepare_prompts(model, {prompts.front()},
                                          create_method(refusal.method, refusal.parameters, model),
                                          nullptr, refusal.contrast ? &contrast : nullptr);
    explain_image(model, reference.images()[0], prepared);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Usage);
    for (const std::string& part : refusal.message_parts) {
      EXPECT_NE(std::string(error.what()).find(part), std::string::npos) << error.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Methods, MethodRefusals,
    ::testing::Values(
        Refusal{"gradcam++",
                nullptr,
                false,
                {"--method gradcam++: unknown method (known: chefer2021, rollout"}},
        Refusal{"chefer2021",
                {{"alpha", 1}},
                false,
                {"method chefer2021 has no parameter alpha (its parameters: start_layer, "
                 "start_layer_text)"}},
        Refusal{"chefer2021", nlohmann::json::array({1}), false, {"must be a JSON object"}},
        Refusal{"chefer2021", {{"start_layer", "x"}}, false, {"start_layer must be an integer"}},
        Refusal{"chefer2021", {{"start_layer", 9}}, false, {"out of range for the vision tower"}},
        Refusal{"attention", {{"start_layer", 1}}, false, {"attention", "start_layer"}},
        Refusal{"rollout", nullptr, true, {"--contrast", "rollout", "no gradient target"}},
        Refusal{"attention", nullptr, true, {"--contrast", "attention", "no gradient target"}},
        Refusal{"gradcam", nullptr, true, {"--contrast", "target=logit"}},
        Refusal{"gradcam", nullptr, false, {"gradcam", "one prompt", "target=logit"}},
        Refusal{"gradcam", {{"target", "loss"}}, false, {"gradcam", "target", "probability"}},
        Refusal{"legrad", {{"layer_index", 3}}, false, {"legrad", "layer_index 3", "-3..-1"}},
        Refusal{"legrad", {{"layer_index", "last"}}, false, {"legrad", "integer"}},
        Refusal{"grad-eclip", {{"layers", 0}}, false, {"grad-eclip", "layers 0", "1..3"}},
        Refusal{"grad-eclip", {{"text_layers", 4}}, false, {"grad-eclip", "text_layers 4"}},
        Refusal{"rollout", {{"start_layer", 3}}, false, {"start layer 3", "vision"}}));

struct ParamCase {
  std::vector<std::string> params;
  std::optional<int> start_layer;
  std::string expected;  // the parameters' JSON, or the error's text
};

class MethodParametersFromTheCommandLine : public ::testing::TestWithParam<ParamCase> {};

TEST_P(MethodParametersFromTheCommandLine, ReadJsonValuesElseStrings) {
  MethodOptions options;
  options.params = GetParam().params;
  options.start_layer = GetParam().start_layer;
  try {
    EXPECT_EQ(method_parameters(options).dump(), GetParam().expected);
  } catch (const Error& error) {
    EXPECT_EQ(error.category(), ErrorCategory::Usage);
    EXPECT_NE(std::string(error.what()).find(GetParam().expected), std::string::npos)
        << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cli, MethodParametersFromTheCommandLine,
    ::testing::Values(ParamCase{{"target=logit"}, std::nullopt, R"({"target":"logit"})"},
                      ParamCase{{"layer_index=-1"}, std::nullopt, R"({"layer_index":-1})"},
                      ParamCase{{}, 2, R"({"start_layer":2})"},
                      ParamCase{{"start_layer=1"}, 2, "start_layer is given twice"},
                      ParamCase{{"target"}, std::nullopt, "expected NAME=VALUE"},
                      ParamCase{{"=3"}, std::nullopt, "expected NAME=VALUE"}));

}  // namespace
}  // namespace clipxai
