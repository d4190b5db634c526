// The engine's seams: a Session explains decoded images in memory and renders them without
// files; the end-of-text slot comes from the tokenizer, not from the highest id; methods are
// found by name with their parameters checked; checkpoints go through the registered readers;
// the library itself reads no environment variable.
#include "clipxai/engine.h"

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>

#include "clipxai/checkpoint.h"
#include "clipxai/environment.h"
#include "clipxai/error.h"
#include "clipxai/output.h"
#include "model_reference.h"

namespace clipxai {
namespace {

using testing::model_data;

const std::string kTinyModel = model_data("tiny_vit.pt");

DecodedImage test_image(int width, int height) {
  cv::Mat rgb(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 255 / width, y * 255 / height, (x * y) % 256);
    }
  }
  return {"memory", rgb};
}

class SessionTest : public ::testing::Test {
 protected:
  ClipModel model = ClipModel::load(kTinyModel);
  Tokenizer tokenizer = load_tokenizer(VocabularySources{}, model.embedded_vocabulary(),
                                       model.path(), model.config().vocab_size);
};

TEST_F(SessionTest, ExplainsInMemoryAsTheTensorLevelCallDoes) {
  const std::vector<std::string> texts = {"a dog", "a cat", "a car"};
  for (const RelevanceOptions& options : {RelevanceOptions{}, RelevanceOptions{0, 0}}) {
    ExplainSettings settings;
    settings.parameters = start_layer_parameters(options);
    settings.crop = CropMode::Pad;
    const Session session(model, tokenizer, texts, settings);
    const DecodedImage image = test_image(64, 40);
    const Explanation explanation = session.explain(image);
    const PreprocessedImage input = session.preprocess(image);
    const std::vector<PromptRelevance> expected =
        explain_image(model, input.pixels,
                      tokenize_prompts(tokenizer, texts, model.config().context_length), options);
    EXPECT_EQ(explanation.width, 64);
    EXPECT_EQ(explanation.height, 40);
    EXPECT_EQ(explanation.crop.y, input.crop.y);
    ASSERT_EQ(explanation.prompts.size(), texts.size());
    for (size_t p = 0; p < texts.size(); ++p) {
      const PromptExplanation& prompt = explanation.prompts[p];
      EXPECT_EQ(prompt.prompt.text, texts[p]);
      EXPECT_EQ(prompt.relevance.logit, expected[p].logit);
      EXPECT_TRUE(torch::equal(prompt.relevance.grid, expected[p].grid));
      EXPECT_EQ(prompt.relevance.token_relevance, expected[p].token_relevance);
      EXPECT_EQ(prompt.peak,
                upsample_map(expected[p].grid, input.crop, image.width(), image.height()).peak);
      // Rendering and encoding stay in memory: PNG bytes of the image's size.
      const std::string png = encode_png(render_prompt_overlay(image, explanation, p, {}));
      const cv::Mat decoded =
          cv::imdecode(std::vector<uchar>(png.begin(), png.end()), cv::IMREAD_COLOR);
      EXPECT_EQ(decoded.cols, 64);
      EXPECT_EQ(decoded.rows, 40);
    }
    EXPECT_EQ(session.method_json()["name"], "chefer2021-gradient-rollout");
    EXPECT_EQ(session.method_json()["crop"], "pad");
  }
}

// Images explained together (Session::prepare_images: the vision tower's gradient-free start as
// one batch) give each image's explanation alone, with every method and rollout depth, a window
// mixing sizes and crops included.
TEST_F(SessionTest, ImagesExplainedTogetherGiveWhatEachGivesAlone) {
  const std::vector<std::string> texts = {"a dog", "a cat", "a car"};
  const std::vector<DecodedImage> images = {test_image(64, 40), test_image(32, 32),
                                            test_image(20, 90)};
  struct Case {
    std::string method;
    MethodParameters parameters;
  };
  std::vector<Case> cases;
  for (const MethodInfo& method : methods()) cases.push_back({method.name, {}});
  cases.push_back({"chefer2021", start_layer_parameters({0, 0})});
  cases.push_back({"chefer2021", start_layer_parameters({1, 1})});
  for (const Case& test : cases) {
    SCOPED_TRACE(test.method + " " + test.parameters.dump());
    ExplainSettings settings;
    settings.method = test.method;
    settings.parameters = test.parameters;
    const Session session(model, tokenizer, texts, settings);
    std::vector<PreprocessedImage> inputs;
    std::vector<const PreprocessedImage*> window;
    for (const DecodedImage& image : images) inputs.push_back(session.preprocess(image));
    for (const PreprocessedImage& input : inputs) window.push_back(&input);
    const ImageStates states = session.prepare_images(window);
    ASSERT_EQ(states.size(), 3);
    for (size_t i = 0; i < images.size(); ++i) {
      const Explanation together =
          session.explain(images[i], inputs[i], states.image(static_cast<int64_t>(i)));
      const Explanation alone = session.explain(images[i], inputs[i]);
      for (size_t p = 0; p < texts.size(); ++p) {
        const PromptRelevance& a = together.prompts[p].relevance;
        const PromptRelevance& b = alone.prompts[p].relevance;
        EXPECT_NEAR(a.logit, b.logit, 1e-4);
        EXPECT_NEAR(a.probability, b.probability, 1e-6);
        EXPECT_LE((a.grid - b.grid).abs().max().item<double>(),
                  1e-5 * std::max(b.grid.abs().max().item<double>(), 1e-12));
        ASSERT_EQ(a.token_relevance.size(), b.token_relevance.size());
        for (size_t t = 0; t < a.token_relevance.size(); ++t) {
          EXPECT_NEAR(a.token_relevance[t], b.token_relevance[t], 1e-5);
        }
        EXPECT_EQ(together.prompts[p].peak, alone.prompts[p].peak);
      }
    }
  }
}

// A vocabulary may place its end-of-text token anywhere (Hugging Face's vocab.json does): the
// slot the tokenizer names is the one whose state becomes the text feature, even when a later
// or earlier slot holds a higher id.
TEST_F(SessionTest, EndOfTextIsTheTokenizersSlotNotTheHighestId) {
  const int vocab = model.config().vocab_size;
  TokenizedText prompt;
  prompt.text = "eot below a token";
  prompt.ids.assign(static_cast<size_t>(model.config().context_length), 0);
  prompt.ids[0] = vocab - 2;  // start of text
  prompt.ids[1] = vocab - 1;  // an ordinary token with the highest id
  prompt.ids[2] = 300;        // end of text in this vocabulary
  prompt.tokens = {"x"};
  prompt.eot_index = 2;
  const torch::Tensor ids = torch::tensor(prompt.ids, torch::kLong).unsqueeze(0);
  const torch::Tensor at_eot = model.encode_text(ids, torch::tensor({2}));
  const torch::Tensor at_highest = model.encode_text(ids, torch::tensor({1}));
  ASSERT_FALSE(torch::allclose(at_eot, at_highest));
  EXPECT_TRUE(torch::allclose(model.encode_text({prompt}), at_eot));

  const DecodedImage image = test_image(32, 32);
  const Session session(model, {prompt}, ExplainSettings{});
  const Explanation explanation = session.explain(image);
  const torch::Tensor image_features =
      model.encode_image(session.preprocess(image).pixels.unsqueeze(0));
  const double cosine = torch::cosine_similarity(image_features, at_eot, 1).item<double>();
  EXPECT_NEAR(explanation.prompts[0].relevance.cosine, cosine, 1e-5);
  EXPECT_EQ(explanation.prompts[0].relevance.token_relevance.size(), 1u);
}

TEST(Methods, TheDefaultIsChefer2021WithItsParameters) {
  ASSERT_FALSE(methods().empty());
  EXPECT_EQ(default_method_name(), "chefer2021");
  EXPECT_EQ(methods().front().parameters.size(), 2u);
}

TEST(Checkpoints, ReadersAreRegisteredAndNamed) {
  ASSERT_FALSE(checkpoint_formats().empty());
  EXPECT_EQ(std::string(checkpoint_formats().front().name), "openai-torchscript");
  EXPECT_EQ(ClipModel::load(kTinyModel).format(), "openai-torchscript");
}

// The library looks only where it is told: with $CLIPXAI_VOCAB set, an empty VocabularySources
// still finds nothing there; the executables' vocabulary_sources() does.
TEST(Environment, TheLibraryReadsNoVariable) {
  const std::string vocab = model_data("no_vocabulary_here.txt.gz");
  ::setenv("CLIPXAI_VOCAB", vocab.c_str(), 1);
  try {
    load_tokenizer(VocabularySources{}, std::nullopt, "m.pt", 600);
    ADD_FAILURE() << "a vocabulary was found";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()).find(vocab), std::string::npos) << error.what();
  }
  EXPECT_EQ(vocabulary_sources("").environment_path, vocab);
  ::unsetenv("CLIPXAI_VOCAB");
}

}  // namespace
}  // namespace clipxai
