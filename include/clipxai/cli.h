// The `clipxai` command line.
//
// Each subcommand is a plain options struct that CLI11 fills, an add_<name>_command() that
// declares its options on the app, and a run_<name>() that validates the options and calls the
// library (src/cli_<name>.cpp). CommandLine assembles them; main.cpp parses, runs, and maps
// clipxai::Error to the exit codes of error.h (CLI11's own parse errors exit 2, --help 0).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>
#include <CLI/CLI.hpp>

#include "clipxai/check.h"
#include "clipxai/image.h"
#include "clipxai/render.h"

namespace clipxai {

// The model clipxai uses when none is given (issue 3's emoji CLIP, committed under models/).
// Looked for, in order: $CLIPXAI_MODEL (used as given), then this file in
//   <directory of the clipxai binary>/../models/
//   <directory of the clipxai binary>/../share/clipxai/models/
//   <source tree>/models/
inline constexpr const char* kDefaultModelFile = "clipxai-emoji-vit.pt";

// `explicit_path` when not empty, else the default model as above. Throws Error(Model) listing
// every place looked when there is none.
std::string resolve_model_path(const std::string& explicit_path);

// Sizes LibTorch's intra- and inter-op thread pools; 0 = one thread per core. LibTorch allows
// the inter-op pool to be sized only once per process, before it is used.
void set_thread_count(int threads);

// "cpu", "cuda" or "cuda:N". Throws Error(Usage) for other names and when CUDA is unavailable.
torch::Device parse_device(const std::string& name);

// A CLI11 transform accepting one of `names` (in any case) and handing CLI11 its value, e.g. for
// `--crop center|pad`; anything else fails with "'x' is not one of a, b, c".
CLI::Validator one_of(const std::map<std::string, int>& names);

// Options several commands share, declared once: --model/--vocab, --crop, --threads/--device.
void add_model_options(CLI::App& command, std::string& model, std::string& vocab);
void add_crop_option(CLI::App& command, CropMode& crop);
void add_runtime_options(CLI::App& command, int& threads, std::string& device);

// IMAGE may be a file, a directory or @LIST (batch.h); prompts come from TEXT and --texts-from.
// Every run keeps OUT/results.jsonl and OUT/run.json (results_log.h), so it can be resumed,
// checked and merged; overlays mirror the input tree under OUT.
struct ExplainOptions {
  std::string image;
  std::vector<std::string> texts;
  std::string texts_from;  // empty: none
  std::string shard;       // "K/N"; empty: every input
  bool resume = false;
  bool quiet = false;
  std::string model;  // empty: the default model
  std::string vocab;  // empty: the lookup order of tokenizer.h
  std::string out_dir = "clipxai-out";
  std::string json_path;           // empty: no JSON; "-": standard output
  std::optional<int> start_layer;  // see relevance.h; empty: the model's default
  std::optional<int> start_layer_text;
  CropMode crop = CropMode::Center;
  OverlayStyle overlay;  // --alpha, --colormap
  bool save_raw = false;
  bool timings = false;  // print where the time went (timings.h); add "timings" to the JSON
  int threads = 0;
  std::string device = "cpu";
};
CLI::App* add_explain_command(CLI::App& app, ExplainOptions& options);
int run_explain(const ExplainOptions& options);

struct TokenizeOptions {
  std::string model;
  std::string vocab;
  bool json = false;
  std::vector<std::string> texts;
};
CLI::App* add_tokenize_command(CLI::App& app, TokenizeOptions& options);
int run_tokenize(const TokenizeOptions& options);

struct InfoOptions {
  std::string model;
  std::string vocab;
  bool json = false;
};
CLI::App* add_info_command(CLI::App& app, InfoOptions& options);
int run_info(const InfoOptions& options);

struct EvalCommandOptions {
  std::string manifest;
  std::string model;
  std::string vocab;
  std::vector<int> start_layers;  // one setting (table row) each; none: the model's default
  CropMode crop = CropMode::Center;
  std::string json_path;  // empty: no JSON; "-": standard output (the table goes to stderr)
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
};
CLI::App* add_eval_command(CLI::App& app, EvalCommandOptions& options);
int run_eval_command(const EvalCommandOptions& options);

// `check` runs check.h's run_check with these options.
CLI::App* add_check_command(CLI::App& app, CheckOptions& options);

struct MergeOptions {
  std::string output;
  std::vector<std::string> inputs;
};
CLI::App* add_merge_command(CLI::App& app, MergeOptions& options);
int run_merge_command(const MergeOptions& options);

// The whole command line. Parse with app().parse(argc, argv), then run() the chosen subcommand.
class CommandLine {
 public:
  CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  CLI::App& app() { return app_; }
  int run() const;

 private:
  CLI::App app_;
  ExplainOptions explain_;
  TokenizeOptions tokenize_;
  InfoOptions info_;
  EvalCommandOptions eval_;
  CheckOptions check_;
  MergeOptions merge_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
};

}  // namespace clipxai
