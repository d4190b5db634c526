#include "clipxai/cli.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include <torch/cuda.h>

#include "clipxai/error.h"
#include "clipxai/relevance.h"

namespace clipxai {
namespace {

constexpr const char* kDescription =
    "clipxai: what a CLIP ViT model looks at when it matches an image with a text.\n"
    "Relevance by Chefer, Gur & Wolf 2021 (arXiv 2103.15679), as the authors' CLIP notebook.";

constexpr const char* kFooter = R"(Examples:
  clipxai explain examples/girl_boy_desktop.png girl boy "desktop computer"
  clipxai explain --model ViT-B-32.pt --json result.json --save-raw photo.jpg "a dog" "a cat"
  clipxai tokenize -- "a photo of a dog"
  clipxai info ViT-B-32.pt
  clipxai check baseline.json candidate.json
  clipxai eval held_out/manifest.json
  clipxai serve --port 7860

Without --model, clipxai uses its own small emoji CLIP (models/clipxai-emoji-vit.pt), or the
file named by $CLIPXAI_MODEL.

Exit codes: 0 success; 1 checked and found different; 2 usage or input error;
3 model or vocabulary cannot be loaded; 4 internal error.
)";

}  // namespace

CLI::Validator number_in(double low, double high, bool whole) {
  const auto bound = [](double value) {
    std::ostringstream text;
    text << std::setprecision(15) << value;
    return text.str();
  };
  const std::string range = bound(low) + " to " + bound(high);
  return CLI::Validator(
      [=](const std::string& text) -> std::string {
        const char* kind = whole ? "a whole number" : "a number";
        char* end = nullptr;
        errno = 0;
        const double value = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE ||
            std::isnan(value) || (whole && value != std::floor(value))) {
          return "'" + text + "' is not " + kind + " (expected " + range + ")";
        }
        if (value < low || value > high) {
          return "'" + text + "' is outside " + range;
        }
        return "";
      },
      "");
}

CLI::Validator one_of(const std::map<std::string, int>& names) {
  std::string choices;
  for (const auto& entry : names) choices += (choices.empty() ? "" : ", ") + entry.first;
  return CLI::Validator(
      [names, choices](std::string& input) -> std::string {
        std::string name = input;
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        const auto found = names.find(name);
        if (found == names.end()) return "'" + input + "' is not one of " + choices;
        input = std::to_string(found->second);
        return "";
      },
      "one of " + choices);
}

torch::Device parse_device(const std::string& name) {
  std::optional<torch::Device> device;
  try {
    device.emplace(name);
  } catch (const c10::Error&) {
  }
  if (!device || !(device->is_cpu() || device->is_cuda())) {
    throw usage_error("--device " + name + ": expected cpu, cuda or cuda:N");
  }
  if (device->is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw usage_error("--device " + name +
                        ": CUDA is not available (no GPU, or LibTorch built for CPU only)");
    }
    if (device->has_index() && device->index() >= static_cast<int>(torch::cuda::device_count())) {
      throw usage_error("--device " + name + ": there are only " +
                        std::to_string(torch::cuda::device_count()) + " CUDA devices");
    }
  }
  return *device;
}

void add_model_options(CLI::App& command, ModelOptions& options, bool model_option) {
  if (model_option) {
    command.add_option("--model", options.model, kModelHelp)->type_name("PATH");
  }
  command
      .add_option("--vocab", options.vocab,
                  "BPE vocabulary: a .txt.gz merge list, a vocab.json (merges.txt beside it) or a "
                  "folder of both (default: the model's own, $CLIPXAI_VOCAB, then a "
                  "pip-installed clip/open_clip)")
      ->type_name("PATH");
  command
      .add_option("--model-config", options.model_config,
                  "JSON of what a checkpoint in OpenAI's layout cannot tell by its shapes "
                  "(vision_heads, text_heads, activation, image_mean, image_std), over its own")
      ->type_name("FILE");
}

ClipModel load_model(const ModelOptions& options) {
  return ClipModel::load(resolve_model_path(options.model), load_options(options));
}

LoadOptions load_options(const ModelOptions& options) { return {options.model_config}; }

const std::map<std::string, int>& crop_modes() {
  static const std::map<std::string, int> modes = {{"center", static_cast<int>(CropMode::Center)},
                                                   {"pad", static_cast<int>(CropMode::Pad)}};
  return modes;
}

void add_crop_option(CLI::App& command, CropMode& crop) {
  command
      .add_option("--crop", crop,
                  "center: the model's centre crop, as CLIP; pad: letterbox the whole image")
      ->transform(one_of(crop_modes()))
      ->default_str("center")
      ->type_name("MODE");
}

void add_max_pixels_option(CLI::App& command, int64_t& max_pixels) {
  command
      .add_option("--max-pixels", max_pixels,
                  "Refuse images of more pixels (width x height, read from the file's header "
                  "before decoding)")
      ->capture_default_str()
      ->type_name("N")
      ->check(number_in(1, 9e18, true));
}

void add_runtime_options(CLI::App& command, int& threads, std::string& device) {
  command.add_option("--threads", threads, "CPU threads (0 = all cores)")
      ->capture_default_str()
      ->type_name("N")
      ->check(number_in(0, 4096, true));
  command.add_option("--device", device, "cpu, cuda or cuda:N")
      ->capture_default_str()
      ->type_name("NAME");
}

namespace {

// An optional start layer: left empty unless given, so that the method's default applies.
void add_start_layer_option(CLI::App& command, const std::string& name,
                            std::optional<int>& start_layer, const std::string& description) {
  command
      .add_option_function<int>(
          name, [&start_layer](const int& value) { start_layer = value; }, description)
      ->type_name("N")
      ->check(number_in(-1, 1 << 20, true));
}

}  // namespace

void add_method_options(CLI::App& command, std::string& method, MethodOptions& options,
                        bool several) {
  std::vector<std::string> names;
  std::string listed;
  for (const MethodInfo& info : methods()) {
    names.push_back(info.name);
    listed += (listed.empty() ? "" : ", ") + info.name;
  }
  auto* option = command.add_option(
      "--method", method,
      several ? "Explanation methods, one table row each: a comma list of " + listed +
                    ", or all (default: " + default_method_name() + ")"
              : "Explanation method: " + listed + " (default: " + default_method_name() + ")");
  option->type_name(several ? "A,B,..." : "NAME");
  if (!several) {
    option->check(CLI::IsMember(names).description(""));
    add_start_layer_option(command, "--start-layer", options.start_layer,
                           "First vision layer of the rollout: -1 = last only (as the notebook), "
                           "0 = all (default: the method's; for chefer2021 the model's, `clipxai "
                           "info` shows it)");
    add_start_layer_option(command, "--start-layer-text", options.start_layer_text,
                           "First text layer of the rollout: -1 = last only, 0 = all (default: "
                           "the method's)");
  }
  command
      .add_option("--param", options.params,
                  "A method parameter, NAME=VALUE (repeatable); `clipxai info` lists each "
                  "method's")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  command
      .add_option_function<std::string>(
          "--contrast", [&options](const std::string& text) { options.contrast = text; },
          "Explain logit(prompt) - logit(TEXT): what makes the image the prompt rather than TEXT "
          "(gradient methods)")
      ->type_name("TEXT");
}

MethodParameters method_parameters(const MethodOptions& options) {
  MethodParameters parameters =
      start_layer_parameters({options.start_layer, options.start_layer_text});
  for (const std::string& param : options.params) {
    const auto equals = param.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw usage_error("--param " + param + ": expected NAME=VALUE");
    }
    const std::string name = param.substr(0, equals);
    const std::string text = param.substr(equals + 1);
    if (parameters.contains(name)) {
      throw usage_error("--param " + param + ": " + name + " is given twice");
    }
    auto value = nlohmann::json::parse(text, nullptr, false);
    parameters[name] = value.is_discarded() ? nlohmann::json(text) : value;
  }
  return parameters;
}

CommandLine::CommandLine() : app_(kDescription, "clipxai") {
  app_.footer(kFooter);
  app_.set_version_flag("--version", std::string("clipxai ") + CLIPXAI_VERSION);
  // One line on stderr, like every other clipxai error.
  app_.failure_message([](const CLI::App*, const CLI::Error& error) {
    return std::string("clipxai: ") + error.what() + " (see clipxai --help)\n";
  });
  commands_.emplace_back(add_explain_command(app_, explain_),
                         [this] { return run_explain(explain_); });
  commands_.emplace_back(add_tokenize_command(app_, tokenize_),
                         [this] { return run_tokenize(tokenize_); });
  commands_.emplace_back(add_info_command(app_, info_), [this] { return run_info(info_); });
  commands_.emplace_back(add_eval_command(app_, eval_), [this] { return run_eval_command(eval_); });
  commands_.emplace_back(add_check_command(app_, check_),
                         [this] { return run_check(check_, std::cout); });
  commands_.emplace_back(add_merge_command(app_, merge_),
                         [this] { return run_merge_command(merge_); });
  commands_.emplace_back(add_serve_command(app_, serve_), [this] { return run_serve(serve_); });
}

int CommandLine::run() const {
  for (const auto& [command, run_command] : commands_) {
    if (command->parsed()) return run_command();
  }
  throw usage_error("no command given (see clipxai --help)");
}

}  // namespace clipxai
