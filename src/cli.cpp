#include "clipxai/cli.h"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "clipxai/error.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

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

Without --model, clipxai uses its own small emoji CLIP (models/clipxai-emoji-vit.pt), or the
file named by $CLIPXAI_MODEL.

Exit codes: 0 success; 1 checked and found different; 2 usage or input error;
3 model or vocabulary cannot be loaded; 4 internal error.
)";

int available_cores() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) return std::max(1, CPU_COUNT(&cpus));
  return 1;
}

}  // namespace

std::string resolve_model_path(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (const char* from_environment = std::getenv("CLIPXAI_MODEL");
      from_environment != nullptr && *from_environment != '\0') {
    return from_environment;
  }
  std::vector<fs::path> directories;
  std::error_code error;
  const fs::path binary = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    directories.push_back(binary.parent_path() / ".." / "models");
    directories.push_back(binary.parent_path() / ".." / "share" / "clipxai" / "models");
  }
  directories.push_back(fs::path(CLIPXAI_SOURCE_DIR) / "models");

  std::vector<fs::path> looked;
  for (const fs::path& directory : directories) {
    const fs::path candidate = (directory / kDefaultModelFile).lexically_normal();
    if (std::find(looked.begin(), looked.end(), candidate) != looked.end()) continue;
    if (fs::is_regular_file(candidate, error)) return candidate.string();
    looked.push_back(candidate);
  }
  std::string places;
  for (const fs::path& path : looked) places += (places.empty() ? "" : ", ") + path.string();
  throw model_error(
      std::string("no --model given and the default model was not found (looked at ") + places +
      "); pass --model FILE or set CLIPXAI_MODEL");
}

void set_thread_count(int threads) {
  const int count = threads > 0 ? threads : available_cores();
  torch::set_num_threads(count);
  static std::once_flag interop_sized;
  std::call_once(interop_sized, [count] { at::set_num_interop_threads(count); });
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

void add_model_options(CLI::App& command, std::string& model, std::string& vocab) {
  command
      .add_option("--model", model,
                  "TorchScript CLIP ViT archive (default: $CLIPXAI_MODEL, else the bundled "
                  "emoji model)")
      ->type_name("FILE");
  command
      .add_option("--vocab", vocab,
                  "BPE vocabulary .txt.gz (default: the one in the model, $CLIPXAI_VOCAB, "
                  "then a pip-installed clip/open_clip)")
      ->type_name("FILE");
}

void add_crop_option(CLI::App& command, CropMode& crop) {
  command
      .add_option("--crop", crop,
                  "center: the model's centre crop, as CLIP; pad: letterbox the whole image")
      ->transform(one_of({{"center", static_cast<int>(CropMode::Center)},
                          {"pad", static_cast<int>(CropMode::Pad)}}))
      ->default_str("center")
      ->type_name("MODE");
}

void add_runtime_options(CLI::App& command, int& threads, std::string& device) {
  command.add_option("--threads", threads, "CPU threads (0 = all cores)")
      ->capture_default_str()
      ->type_name("N")
      ->check(CLI::Range(0, 4096).description(""));
  command.add_option("--device", device, "cpu, cuda or cuda:N")
      ->capture_default_str()
      ->type_name("NAME");
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
}

int CommandLine::run() const {
  for (const auto& [command, run_command] : commands_) {
    if (command->parsed()) return run_command();
  }
  throw usage_error("no command given (see clipxai --help)");
}

}  // namespace clipxai
