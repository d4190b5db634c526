// `clipxai explain [OPTIONS] IMAGE TEXT [TEXT...]`
#include <filesystem>
#include <iostream>

#include <torch/torch.h>

#include "clipxai/atomic_file.h"
#include "clipxai/cli.h"
#include "clipxai/error.h"
#include "clipxai/model.h"
#include "clipxai/output.h"
#include "clipxai/relevance.h"
#include "clipxai/report.h"
#include "clipxai/tokenizer.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

constexpr const char* kJsonStdout = "-";

// Fails before any work is done when an output location is unusable.
void prepare_outputs(const ExplainOptions& options) {
  std::error_code error;
  fs::create_directories(options.out_dir, error);
  if (!fs::is_directory(options.out_dir)) {
    throw usage_error("--out " + options.out_dir + ": cannot create the directory" +
                      (error ? ": " + error.message() : ""));
  }
  if (!options.json_path.empty() && options.json_path != kJsonStdout) {
    const fs::path parent = fs::path(options.json_path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent)) {
      throw usage_error("--json " + options.json_path + ": directory " + parent.string() +
                        " does not exist");
    }
    if (fs::is_directory(options.json_path)) {
      throw usage_error("--json " + options.json_path + ": is a directory");
    }
  }
}

std::vector<TokenizedText> tokenize_prompts(const Tokenizer& tokenizer,
                                            const std::vector<std::string>& texts,
                                            int context_length) {
  std::vector<TokenizedText> prompts;
  for (const std::string& text : texts) {
    prompts.push_back(tokenizer.tokenize(text, context_length));
    if (prompts.back().tokens.empty()) {
      throw usage_error("prompt \"" + text + "\" has no tokens to explain; give a non-empty text");
    }
  }
  return prompts;
}

// Explains one image for every prompt and writes its overlays (and raw maps) into
// options.out_dir as <image stem>__<prompt slug>.png / .npy.
ImageResult explain_to_files(const ClipModel& model, const DecodedImage& image,
                             const std::vector<TokenizedText>& prompts,
                             const ExplainOptions& options) {
  const ModelConfig& config = model.config();
  const PreprocessSpec spec{config.input_resolution, config.image_mean, config.image_std};
  const PreprocessedImage input = preprocess(image, spec, options.crop);
  std::vector<PromptRelevance> relevances =
      explain_image(model, input.pixels.to(model.device()), prompts,
                    RelevanceOptions{options.start_layer, options.start_layer_text});

  std::vector<std::string> texts;
  for (const TokenizedText& prompt : prompts) texts.push_back(prompt.text);
  const std::vector<std::string> slugs = unique_slugs(texts);
  const std::string stem = fs::path(image.path).stem().string();

  ImageResult result{image.path, image.width(), image.height(), input.crop, {}};
  for (size_t i = 0; i < prompts.size(); ++i) {
    PromptResult prompt{prompts[i], std::move(relevances[i]), {}, {}, {}};
    const RelevanceMap map =
        upsample_map(prompt.relevance.grid, input.crop, image.width(), image.height());
    prompt.peak = map.peak;
    const std::string base = (fs::path(options.out_dir) / (stem + "__" + slugs[i])).string();
    prompt.overlay = base + ".png";
    write_png(*prompt.overlay, render_overlay(image.rgb, map, options.overlay));
    if (options.save_raw) {
      prompt.raw = base + ".npy";
      write_npy(*prompt.raw, prompt.relevance.grid);
    }
    result.prompts.push_back(std::move(prompt));
  }
  return result;
}

std::string dump(const nlohmann::json& document) {
  return document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

CLI::App* add_explain_command(CLI::App& app, ExplainOptions& options) {
  CLI::App* command = app.add_subcommand(
      "explain", "Score an image against texts and show what the model looked at for each.");
  command->footer(
      R"(For each TEXT, writes OUT/<image stem>__<text>.png: the relevance map over the image
(the part outside the model's centre crop dimmed), and prints one line: probability, logit,
peak pixel and overlay path.

Examples:
  clipxai explain examples/girl_boy_desktop.png girl boy "desktop computer"
  clipxai explain --model ViT-B-32.pt --crop pad --json - photo.jpg "a dog" > result.json
)");
  command->add_option("IMAGE", options.image, "Image file (JPEG, PNG, WebP, BMP, TIFF)")
      ->required()
      ->type_name("FILE");
  command->add_option("TEXT", options.texts, "Prompts to explain, one or more")->required();
  command
      ->add_option("--model", options.model,
                   "TorchScript CLIP ViT archive (default: $CLIPXAI_MODEL, else the bundled "
                   "emoji model)")
      ->type_name("FILE");
  command
      ->add_option("--vocab", options.vocab,
                   "BPE vocabulary .txt.gz (default: the one in the model, $CLIPXAI_VOCAB, "
                   "then a pip-installed clip/open_clip)")
      ->type_name("FILE");
  command->add_option("--out", options.out_dir, "Directory for overlays and raw maps")
      ->capture_default_str()
      ->type_name("DIR");
  command
      ->add_option("--json", options.json_path,
                   "Write the JSON report to this file ('-' = standard output)")
      ->type_name("PATH");
  command
      ->add_option("--start-layer", options.start_layer,
                   "First vision layer of the rollout: -1 = last only (as the notebook), 0 = all")
      ->capture_default_str()
      ->type_name("N")
      ->check(CLI::Range(-1, 1 << 20).description(""));
  command
      ->add_option("--start-layer-text", options.start_layer_text,
                   "First text layer of the rollout: -1 = last only, 0 = all")
      ->capture_default_str()
      ->type_name("N")
      ->check(CLI::Range(-1, 1 << 20).description(""));
  command
      ->add_option("--crop", options.crop,
                   "center: the model's centre crop, as CLIP; pad: letterbox the whole image")
      ->transform(one_of({{"center", static_cast<int>(CropMode::Center)},
                          {"pad", static_cast<int>(CropMode::Pad)}}))
      ->default_str("center")
      ->type_name("MODE");
  command
      ->add_option("--alpha", options.overlay.alpha, "Weight of the heat map in the overlay, 0..1")
      ->capture_default_str()
      ->type_name("A")
      ->check(CLI::Range(0.0, 1.0).description(""));
  command->add_option("--colormap", options.overlay.colormap, "Colour map of the overlay")
      ->transform(one_of(colormaps_by_name()))
      ->default_str("jet")
      ->type_name("NAME");
  command->add_flag("--save-raw", options.save_raw,
                    "Also write each raw relevance grid as float32 .npy (numpy.load reads it)");
  command->add_option("--threads", options.threads, "CPU threads (0 = all cores)")
      ->capture_default_str()
      ->type_name("N")
      ->check(CLI::Range(0, 4096).description(""));
  command->add_option("--device", options.device, "cpu, cuda or cuda:N")
      ->capture_default_str()
      ->type_name("NAME");
  return command;
}

int run_explain(const ExplainOptions& options) {
  const torch::Device device = parse_device(options.device);
  prepare_outputs(options);
  set_thread_count(options.threads);

  const DecodedImage image = load_image(options.image);
  ClipModel model = ClipModel::load(resolve_model_path(options.model));
  const Tokenizer tokenizer = load_tokenizer(options.vocab, model.embedded_vocabulary(),
                                             model.path(), model.config().vocab_size);
  const std::vector<TokenizedText> prompts =
      tokenize_prompts(tokenizer, options.texts, model.config().context_length);
  model.to(device);

  const ImageResult result = explain_to_files(model, image, prompts, options);

  const bool json_to_stdout = options.json_path == kJsonStdout;
  std::ostream& console = json_to_stdout ? std::cerr : std::cout;
  for (const std::string& line : console_lines(result)) console << line << '\n';
  console.flush();

  if (!options.json_path.empty()) {
    const MethodSettings method =
        method_settings(RelevanceOptions{options.start_layer, options.start_layer_text},
                        model.config(), options.crop);
    const std::string document = dump(report_json(
        model_json(model.path(), model.config(), tokenizer.source()), method, {result}, {}));
    if (json_to_stdout) {
      std::cout << document << std::flush;
    } else {
      write_file_atomically(options.json_path, document);
    }
  }
  return kExitOk;
}

}  // namespace clipxai
