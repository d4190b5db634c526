// `clipxai eval [OPTIONS] MANIFEST` — the grounding benchmark of eval.h.
#include <unistd.h>

#include <iostream>

#include "clipxai/atomic_file.h"
#include "clipxai/cli.h"
#include "clipxai/error.h"
#include "clipxai/eval.h"
#include "clipxai/output.h"

namespace clipxai {

CLI::App* add_eval_command(CLI::App& app, EvalCommandOptions& options) {
  CLI::App* command = app.add_subcommand(
      "eval",
      "Grounding benchmark: pointing game, energy, mIoU and zero-shot top-1 on a manifest.");
  command->footer(
      R"(The manifest lists images, their prompts and the ground-truth objects:
  {"images": [{"image": "scene.png", "prompts": ["dog", "cat", "car"],
               "objects": [{"text": "dog", "box": [x0, y0, x1, y1], "mask": "scene_dog.png"}]}]}
Paths are relative to the manifest. Each --start-layer value is one method setting (a row).
scripts/make_manifest.py writes held-out manifests for the bundled emoji model.

Examples:
  clipxai eval held_out/manifest.json
  clipxai eval --start-layer -1 --start-layer 0 --json eval.json held_out/manifest.json
)");
  command->add_option("MANIFEST", options.manifest, "Manifest JSON file")
      ->required()
      ->type_name("FILE");
  add_model_options(*command, options.model, options.vocab);
  command
      ->add_option("--start-layer", options.start_layers,
                   "Vision start layer of a setting; repeat or comma-separate for several "
                   "(-1 = last layer only, 0 = all; default: the model's, `clipxai info` "
                   "shows it)")
      ->type_name("N")
      ->delimiter(',')
      ->check(CLI::Range(-1, 1 << 20).description(""));
  add_crop_option(*command, options.crop);
  command
      ->add_option("--json", options.json_path,
                   "Also write the report as JSON to this file ('-' = standard output)")
      ->type_name("PATH");
  add_runtime_options(*command, options.threads, options.device);
  command->add_flag("--quiet", options.quiet, "No progress display on standard error");
  return command;
}

int run_eval_command(const EvalCommandOptions& options) {
  const torch::Device device = parse_device(options.device);
  set_thread_count(options.threads);
  EvalOptions eval;
  eval.manifest = options.manifest;
  eval.model = resolve_model_path(options.model);
  eval.vocabulary = vocabulary_sources(options.vocab);
  if (!options.start_layers.empty()) {
    eval.start_layers.assign(options.start_layers.begin(), options.start_layers.end());
  }
  eval.crop = options.crop;
  eval.device = device;
  eval.progress = progress_style(options.quiet, isatty(STDERR_FILENO) != 0);
  eval.progress_out = &std::cerr;
  const EvalReport report = run_eval(eval);

  const bool json_to_stdout = options.json_path == "-";
  print_eval_table(report, json_to_stdout ? std::cerr : std::cout);
  if (!options.json_path.empty()) {
    const std::string document = json_text(to_json(report)) + "\n";
    if (json_to_stdout) {
      std::cout << document << std::flush;
    } else {
      write_file_atomically(options.json_path, document);
    }
  }
  // As in a batch run: the others are measured, but a CI job must notice the failed images.
  return report.errors.empty() ? kExitOk : kExitUsageOrInput;
}

}  // namespace clipxai
