// The floor of scripts/bench.sh: what explaining one image with P prompts cannot cost less than,
// measured with the library functions clipxai uses and the same thread count.
//
//   floor   = one plain forward pass of the vision tower at batch 1 (ClipModel::encode_image)
//             + the P prompts' text forward passes (ClipModel::encode_text), no autograd;
//   explain = explain_image (relevance.h) for that image and the same P prompts, default
//             settings unless --start-layer/--start-layer-text are given.
// Both are timed alternately, after one warm-up of each, and the medians are printed as one JSON
// object (seconds): {"load", "decode", "floor", "floor_vision", "floor_text", "explain",
// "explain_over_floor", "repeats", "threads", "prompts"}.
//
//   build/bench_floor --model vit_b32.pt --vocab bpe_simple_vocab_16e6.txt.gz --threads 2 \
//       photo.jpg "a dog" "a cat"
// (CMake option CLIPXAI_BENCHMARKS=ON builds it; it is not part of the test suite.)
#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "clipxai/environment.h"
#include "clipxai/error.h"
#include "clipxai/image.h"
#include "clipxai/model.h"
#include "clipxai/relevance.h"
#include "clipxai/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

struct Options {
  std::string model;
  std::string vocab;
  std::string image;
  std::vector<std::string> texts;
  int threads = 2;
  int repeats = 5;
  clipxai::RelevanceOptions relevance;
};

nlohmann::json measure(const Options& options) {
  torch::set_num_threads(options.threads);
  at::set_num_interop_threads(options.threads);

  auto start = Clock::now();
  const auto model = clipxai::ClipModel::load(options.model);
  const auto& config = model.config();
  const auto tokenizer = clipxai::load_tokenizer(options.vocab, model.embedded_vocabulary(),
                                                 options.model, config.vocab_size);
  std::vector<clipxai::TokenizedText> prompts;
  for (const auto& text : options.texts) {
    prompts.push_back(tokenizer.tokenize(text, config.context_length));
  }
  const double load = seconds_since(start);

  start = Clock::now();
  const clipxai::PreprocessSpec spec{config.input_resolution, config.image_mean, config.image_std};
  const auto pixels =
      clipxai::preprocess(clipxai::load_image(options.image), spec, clipxai::CropMode::Center)
          .pixels;
  const double decode = seconds_since(start);

  const auto image_batch = pixels.unsqueeze(0);

  std::vector<double> vision_times, text_times, floor_times, explain_times;
  for (int run = 0; run <= options.repeats; ++run) {
    start = Clock::now();
    model.encode_image(image_batch);
    const double vision = seconds_since(start);
    start = Clock::now();
    model.encode_text(prompts);
    const double text = seconds_since(start);
    start = Clock::now();
    clipxai::explain_image(model, pixels, prompts, options.relevance);
    const double explain = seconds_since(start);
    if (run == 0) continue;  // warm-up: first-call allocations and lazy initialisation
    vision_times.push_back(vision);
    text_times.push_back(text);
    floor_times.push_back(vision + text);
    explain_times.push_back(explain);
  }
  const double floor = median(floor_times);
  const double explain = median(explain_times);
  return {{"load", load},
          {"decode", decode},
          {"floor", floor},
          {"floor_vision", median(vision_times)},
          {"floor_text", median(text_times)},
          {"explain", explain},
          {"explain_over_floor", explain / floor},
          {"repeats", options.repeats},
          {"threads", options.threads},
          {"prompts", prompts.size()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times the floor (plain forwards) against explain_image for one image"};
  Options options;
  app.add_option("--model", options.model, "TorchScript CLIP ViT archive")->required();
  app.add_option("--vocab", options.vocab, "BPE vocabulary .txt.gz (default: as clipxai looks)");
  app.add_option("--threads", options.threads, "Intra- and inter-op threads")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--repeats", options.repeats, "Timed runs after the warm-up")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--start-layer", options.relevance.start_layer, "As clipxai explain")
      ->capture_default_str();
  app.add_option("--start-layer-text", options.relevance.start_layer_text, "As clipxai explain")
      ->capture_default_str();
  app.add_option("IMAGE", options.image, "Image file")->required();
  app.add_option("TEXT", options.texts, "Prompts")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    std::cout << measure(options).dump() << std::endl;
  } catch (const clipxai::Error& e) {
    std::cerr << "bench_floor: " << e.what() << std::endl;
    return clipxai::exit_code_for(e.category());
  }
  return 0;
}
