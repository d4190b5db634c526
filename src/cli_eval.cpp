// `clipxai eval [OPTIONS] MANIFEST` — the benchmark of eval.h.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <sstream>

#include "clipxai/atomic_file.h"
#include "clipxai/cli.h"
#include "clipxai/error.h"
#include "clipxai/eval.h"
#include "clipxai/output.h"

namespace clipxai {

CLI::App* add_eval_command(CLI::App& app, EvalCommandOptions& options) {
  CLI::App* command = app.add_subcommand(
      "eval",
      "Benchmark of explanation methods on a manifest: pointing game, energy, mIoU, deletion and "
      "insertion AUC, time, model randomisation and zero-shot top-1.");
  command->footer(
      R"(The manifest lists images, their prompts and the ground-truth objects:
  {"images": [{"image": "scene.png", "prompts": ["dog", "cat", "car"],
               "objects": [{"text": "dog", "box": [x0, y0, x1, y1], "mask": "scene_dog.png"}]}]}
Paths are relative to the manifest, inside its directory (see --allow-outside). Each method
is a row of the table, and so is each --start-layer value of the methods that have a start
layer (chefer2021, rollout).
scripts/make_manifest.py writes held-out manifests for the bundled emoji model.

Examples:
  clipxai eval held_out/manifest.json
  clipxai eval --start-layer -1 --start-layer 0 --json eval.json held_out/manifest.json
  clipxai eval --method all --deletion-insertion --sanity --plot curves.png held_out/manifest.json
  clipxai eval --method chefer2021,gradcam --param target=logit --contrast boy demo/manifest.json
)");
  command->add_option("MANIFEST", options.manifest, "Manifest JSON file")
      ->required()
      ->type_name("FILE");
  command->add_flag("--allow-outside", options.allow_outside,
                    "Let the manifest name images and masks outside its own directory (absolute "
                    "paths, \"..\"); refused by default, so a manifest from elsewhere cannot "
                    "read any file");
  add_model_options(*command, options.model);
  add_method_options(*command, options.methods, options.method, /*several=*/true);
  command
      ->add_option("--start-layer", options.start_layers,
                   "Vision start layer of a setting; repeat or comma-separate for several "
                   "(-1 = last layer only, 0 = all; default: the method's, for chefer2021 the "
                   "model's, `clipxai info` shows it)")
      ->type_name("N")
      ->delimiter(',')
      ->check(number_in(-1, 1 << 20, true));
  command->add_flag("--deletion-insertion", options.deletion_insertion,
                    "Also measure deletion and insertion AUC (RISE; 102 forward passes of the "
                    "vision tower per object)");
  command->add_flag("--sanity", options.sanity,
                    "Also run the model-randomisation test (Adebayo et al. 2018): every image "
                    "explained again with the top 1, 2, ... vision blocks re-initialised");
  command
      ->add_option("--plot", options.plot_path,
                   "Write the mean deletion and insertion curves as a PNG (needs "
                   "--deletion-insertion)")
      ->type_name("PATH");
  add_crop_option(*command, options.crop);
  add_max_pixels_option(*command, options.max_pixels);
  command
      ->add_option("--json", options.json_path,
                   "Also write the report as JSON to this file ('-' = standard output)")
      ->type_name("PATH");
  add_runtime_options(*command, options.threads, options.device);
  command->add_flag("--quiet", options.quiet, "No progress display on standard error");
  return command;
}

std::vector<EvalSetting> eval_settings(const EvalCommandOptions& options) {
  std::vector<std::string> names;
  if (options.methods.empty()) {
    names.push_back(default_method_name());
  } else if (options.methods == "all") {
    for (const MethodInfo& info : methods()) names.push_back(info.name);
  } else {
    std::stringstream list(options.methods);
    for (std::string name; std::getline(list, name, ',');) names.push_back(name);
  }
  const MethodParameters given = method_parameters(options.method);
  const auto has_parameter = [](const MethodInfo& info, const std::string& name) {
    return std::any_of(info.parameters.begin(), info.parameters.end(),
                       [&](const MethodParameter& parameter) { return parameter.name == name; });
  };
  std::vector<EvalSetting> settings;
  std::set<std::string> used;
  for (const std::string& name : names) {
    const MethodInfo& info = method_info(name);
    MethodParameters parameters = MethodParameters::object();
    for (const auto& [key, value] : given.items()) {
      if (has_parameter(info, key)) {
        parameters[key] = value;
        used.insert(key);
      }
    }
    if (options.start_layers.empty() || !has_parameter(info, "start_layer")) {
      settings.push_back({name, parameters});
      continue;
    }
    used.insert("start_layer");
    for (int layer : options.start_layers) {
      MethodParameters with_layer = parameters;
      with_layer["start_layer"] = layer;
      settings.push_back({name, with_layer});
    }
  }
  for (const auto& [key, value] : given.items()) {
    if (!used.count(key)) {
      throw usage_error("--param " + key + ": none of the methods " + options.methods +
                        " has this parameter");
    }
  }
  if (!options.start_layers.empty() && !used.count("start_layer")) {
    throw usage_error("--start-layer: none of the methods " + options.methods +
                      " has a start layer");
  }
  return settings;
}

namespace {

// --json and --plot must not replace what the benchmark reads, nor each other.
void refuse_outputs_over_inputs(const EvalCommandOptions& options, const EvalOptions& eval) {
  std::vector<ProtectedFile> files = {{eval.manifest, "the manifest"},
                                      {eval.model, "the model"},
                                      {eval.model_options.model_config, "the model config"},
                                      {eval.vocabulary.explicit_path, "the vocabulary"}};
  for (const ManifestImage& image : load_manifest(eval.manifest, eval.allow_outside).images) {
    files.push_back({image.image, "an image of the manifest"});
    for (const ManifestObject& object : image.objects) {
      if (object.mask) files.push_back({*object.mask, "a mask of the manifest"});
    }
  }
  if (!options.json_path.empty() && options.json_path != "-") {
    refuse_overwriting("--json", options.json_path, files);
    files.push_back({options.json_path, "the --json report"});
  }
  if (!options.plot_path.empty()) refuse_overwriting("--plot", options.plot_path, files);
}

}  // namespace

int run_eval_command(const EvalCommandOptions& options) {
  const torch::Device device = parse_device(options.device);
  set_thread_count(options.threads);
  if (!options.plot_path.empty() && !options.deletion_insertion) {
    throw usage_error("--plot draws the deletion and insertion curves: add --deletion-insertion");
  }
  EvalOptions eval;
  eval.manifest = options.manifest;
  eval.allow_outside = options.allow_outside;
  eval.model = resolve_model_path(options.model.model);
  eval.model_options = load_options(options.model);
  eval.vocabulary = vocabulary_sources(options.model.vocab);
  eval.settings = eval_settings(options);
  eval.contrast = options.method.contrast;
  eval.deletion_insertion = options.deletion_insertion;
  eval.sanity = options.sanity;
  eval.crop = options.crop;
  eval.max_pixels = options.max_pixels;
  eval.device = device;
  eval.progress = progress_style(options.quiet, isatty(STDERR_FILENO) != 0);
  eval.progress_out = &std::cerr;
  refuse_outputs_over_inputs(options, eval);
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
  if (!options.plot_path.empty()) write_file_atomically(options.plot_path, plot_curves(report));
  // As in a batch run: the others are measured, but a CI job must notice the failed images.
  return report.errors.empty() ? kExitOk : kExitUsageOrInput;
}

}  // namespace clipxai
