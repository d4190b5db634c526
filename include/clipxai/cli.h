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
#include <nlohmann/json.hpp>

#include "clipxai/check.h"
#include "clipxai/environment.h"
#include "clipxai/eval.h"
#include "clipxai/explain_job.h"
#include "clipxai/image.h"
#include "clipxai/method.h"
#include "clipxai/model.h"
#include "clipxai/render.h"
#include "clipxai/server.h"

namespace clipxai {

// "cpu", "cuda" or "cuda:N". Throws Error(Usage) for other names and when CUDA is unavailable.
torch::Device parse_device(const std::string& name);

// A CLI11 transform accepting one of `names` (in any case) and handing CLI11 its value, e.g. for
// `--crop center|pad`; anything else fails with "'x' is not one of a, b, c".
CLI::Validator one_of(const std::map<std::string, int>& names);

// A CLI11 check that the value is a number in [low, high] (a whole one when `whole`), run on each
// value before CLI11 converts it: "'x' is not a whole number" rather than CLI11's "Value x not in
// range", and NaN, which no comparison lets through, is refused too.
CLI::Validator number_in(double low, double high, bool whole);

// Options several commands share, declared once: --model/--vocab/--model-config, --crop,
// --threads/--device.
struct ModelOptions {
  std::string model;         // empty: the default model
  std::string vocab;         // empty: the look-up order of environment.h
  std::string model_config;  // LoadOptions::model_config; empty: none
};
// The --model option's help: what a checkpoint may be.
inline constexpr const char* kModelHelp =
    "CLIP ViT checkpoint: OpenAI's TorchScript .pt, a Hugging Face CLIPModel folder, an open_clip "
    "folder or file, or a .safetensors/.bin state dict (default: $CLIPXAI_MODEL, else the "
    "bundled emoji model)";
// `model_option`: declare --model (commands that take the model otherwise declare only the rest).
void add_model_options(CLI::App& command, ModelOptions& options, bool model_option = true);
LoadOptions load_options(const ModelOptions& options);
// --max-pixels: image.h's bound on an image's width x height, checked from the file's header.
void add_max_pixels_option(CLI::App& command, int64_t& max_pixels);
// The model named (or the default one), read with its options.
ClipModel load_model(const ModelOptions& options);
// --crop's names: center, pad.
const std::map<std::string, int>& crop_modes();
void add_crop_option(CLI::App& command, CropMode& crop);
void add_runtime_options(CLI::App& command, int& threads, std::string& device);
// The method options of the command line, each left empty unless given so that the method's
// default applies: --start-layer, --start-layer-text and --param NAME=VALUE (repeatable; VALUE is
// read as JSON when it parses, else as a string: start_layer=2, target=logit), and --contrast.
struct MethodOptions {
  std::optional<int> start_layer;
  std::optional<int> start_layer_text;
  std::vector<std::string> params;
  std::optional<std::string> contrast;
};
// --method NAME (one of method.h's names) and the method options. With `several` (eval): a comma
// list or "all", and no --start-layer options (eval has its own, a list).
void add_method_options(CLI::App& command, std::string& method, MethodOptions& options,
                        bool several = false);
// The options as MethodParameters. Throws Error(Usage) for a --param without "=" or a parameter
// given twice.
MethodParameters method_parameters(const MethodOptions& options);

// The job's own fields, plus what the command line resolves before the run: the shard, the
// default model, the vocabulary's look-up places, the threads and device, and the method
// options that become ExplainSettings::parameters.
struct ExplainOptions {
  ExplainJob job;
  std::string shard;  // "K/N"; empty: every input
  bool quiet = false;
  ModelOptions model;
  MethodOptions method;
  int threads = 0;
  std::string device = "cpu";
};
CLI::App* add_explain_command(CLI::App& app, ExplainOptions& options);
int run_explain(const ExplainOptions& options);

struct TokenizeOptions {
  ModelOptions model;
  bool json = false;
  std::vector<std::string> texts;
};
CLI::App* add_tokenize_command(CLI::App& app, TokenizeOptions& options);
int run_tokenize(const TokenizeOptions& options);

// `clipxai info --json`'s description of a model: model_json (report.h) plus the checkpoint's
// format, where each fact came from, and every method with its parameters and defaults.
// `tokenizer_problem`: why the vocabulary did not load (empty: it did).
nlohmann::json info_json(const ClipModel& model, const std::string& tokenizer_source,
                         const std::string& tokenizer_problem = "");

struct InfoOptions {
  ModelOptions model;
  bool json = false;
};
CLI::App* add_info_command(CLI::App& app, InfoOptions& options);
int run_info(const InfoOptions& options);

struct EvalCommandOptions {
  std::string manifest;
  bool allow_outside = false;
  ModelOptions model;
  std::string methods;            // "a,b,c" or "all"; empty: the default method
  std::vector<int> start_layers;  // one setting (table row) each for the methods that take one
  MethodOptions method;           // --param, --contrast (its start layers are unused here)
  bool deletion_insertion = false;
  bool sanity = false;
  std::string plot_path;  // empty: no plot
  CropMode crop = CropMode::Center;
  int64_t max_pixels = kDefaultMaxPixels;
  std::string json_path;  // empty: no JSON; "-": standard output (the table goes to stderr)
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
};
CLI::App* add_eval_command(CLI::App& app, EvalCommandOptions& options);
// The table rows the options ask for: each method of options.methods (method.h's order for
// "all"), once per --start-layer value for those with a start_layer parameter, each --param
// given to the methods that have it. Throws Error(Usage) for an unknown method, a --param or
// --start-layer no chosen method takes, or a --param without "=".
std::vector<EvalSetting> eval_settings(const EvalCommandOptions& options);
int run_eval_command(const EvalCommandOptions& options);

// `check` runs check.h's run_check with these options.
CLI::App* add_check_command(CLI::App& app, CheckOptions& options);

struct MergeOptions {
  std::string output;
  std::vector<std::string> inputs;
};
CLI::App* add_merge_command(CLI::App& app, MergeOptions& options);
int run_merge_command(const MergeOptions& options);

// `clipxai serve`: the demo server (server.h) over one model, until SIGTERM or SIGINT.
struct ServeOptions {
  ModelOptions model;
  std::string host = "127.0.0.1";
  int port = 7860;
  ServerLimits limits;
  std::string examples;  // folder of example images; empty: the bundled examples/
  bool quiet = false;    // no line per request
  int threads = 0;
  std::string device = "cpu";
};
CLI::App* add_serve_command(CLI::App& app, ServeOptions& options);
int run_serve(const ServeOptions& options);

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
  ServeOptions serve_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
};

}  // namespace clipxai
