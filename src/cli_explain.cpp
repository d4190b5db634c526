// `clipxai explain [OPTIONS] IMAGE [TEXT...]`: the options of an ExplainJob (explain_job.h), the
// run, and what it prints: one image's lines, or a batch's progress and summary.
#include <unistd.h>

#include <iostream>

#include "clipxai/cli.h"
#include "clipxai/error.h"
#include "clipxai/explain_job.h"
#include "clipxai/progress.h"
#include "clipxai/relevance.h"

namespace clipxai {

CLI::App* add_explain_command(CLI::App& app, ExplainOptions& options) {
  CLI::App* command = app.add_subcommand(
      "explain", "Score an image against texts and show what the model looked at for each.");
  command->footer(
      R"(For each TEXT, writes OUT/<image stem>__<text>.png: the relevance map over the image
(the part outside the model's centre crop dimmed), and prints one line: probability, logit,
peak pixel and overlay path.

IMAGE may also be a directory (every jpg, jpeg, png, webp, bmp, tif, tiff below it, in sorted
order; overlays mirror its tree under OUT) or @LIST (a file naming one image per line). Each
finished image is appended to OUT/results.jsonl at once, so a run stopped at any point can be
finished with --resume; a bad image is reported and recorded, the run goes on, and the exit
code is then 2. --shard K/N takes a fixed share of the images (by a hash of their path) for
one of N parallel jobs; `clipxai merge` joins the shards' OUT directories.

Examples:
  clipxai explain examples/girl_boy_desktop.png girl boy "desktop computer"
  clipxai explain --model ViT-B-32.pt --crop pad --json - photo.jpg "a dog" > result.json
  clipxai explain --phrases "a girl and a boy at a desktop computer" examples/girl_boy_desktop.png
  clipxai explain --texts-from prompts.txt --out runs/photos --resume photos/
  clipxai explain --shard "$SLURM_ARRAY_TASK_ID/8" --out "runs/part$SLURM_ARRAY_TASK_ID" photos/ "a dog"
)");
  command
      ->add_option("IMAGE", options.job.image,
                   "Image file (JPEG, PNG, WebP, BMP, TIFF), directory of images, or @LIST")
      ->required()
      ->type_name("IMAGE");
  command->add_option("TEXT", options.job.texts, "Prompts to explain (and/or --texts-from)");
  command
      ->add_option("--texts-from", options.job.texts_from,
                   "More prompts, one per line of this UTF-8 file (blank lines skipped)")
      ->type_name("FILE");
  command
      ->add_option("--phrases", options.job.phrases,
                   "Also explain this sentence and each of its noun phrases (Link Grammar's "
                   "parse: \"a girl and a boy\" -> \"a girl\", \"a boy\"); the JSON gives each "
                   "phrase's \"span\" in the sentence")
      ->type_name("TEXT");
  command
      ->add_option("--shard", options.shard,
                   "Explain only share K of N (1 <= K <= N), e.g. 2/8; the shares 1/N..N/N cover "
                   "every image once")
      ->type_name("K/N");
  command->add_flag("--resume", options.job.resume,
                    "Continue the run in OUT: skip images already complete in OUT/results.jsonl");
  command->add_flag("--quiet", options.quiet, "No progress display on standard error");
  add_model_options(*command, options.model);
  command
      ->add_option("--out", options.job.out_dir,
                   "Directory for overlays, raw maps, results.jsonl and run.json")
      ->capture_default_str()
      ->type_name("DIR");
  command
      ->add_option("--json", options.job.json_path,
                   "Write the JSON report to this file ('-' = standard output)")
      ->type_name("PATH");
  add_method_options(*command, options.job.settings.method, options.method);
  add_crop_option(*command, options.job.settings.crop);
  add_max_pixels_option(*command, options.job.max_pixels);
  command
      ->add_option("--alpha", options.job.overlay.alpha,
                   "Weight of the heat map in the overlay, 0..1")
      ->capture_default_str()
      ->type_name("A")
      ->check(number_in(0, 1, false));
  command->add_option("--colormap", options.job.overlay.colormap, "Colour map of the overlay")
      ->transform(one_of(colormaps_by_name()))
      ->default_str("jet")
      ->type_name("NAME");
  command->add_flag("--save-raw", options.job.save_raw,
                    "Also write each raw relevance grid as float32 .npy (numpy.load reads it)");
  command
      ->add_option("--image-batch", options.job.batch.window,
                   "Images of a folder or list whose vision tower runs as one batch up to the "
                   "first layer explained (faster per image; up to 2N decoded images are held at "
                   "once; 1: each image alone, reproducible bit for bit)")
      ->capture_default_str()
      ->type_name("N")
      ->check(CLI::Range(1, 64));
  command->add_flag("--timings", options.job.timings,
                    "Print where the time went (load, decode, vision, text, relevance, rendering, "
                    "writing) to standard error, and add it to the JSON as \"timings\"");
  add_runtime_options(*command, options.threads, options.device);
  return command;
}

int run_explain(const ExplainOptions& options) {
  ExplainJob job = options.job;
  job.settings.parameters = method_parameters(options.method);
  job.settings.contrast = options.method.contrast;
  job.device = parse_device(options.device);
  if (!options.shard.empty()) job.shard = parse_shard(options.shard);
  job.model_path = resolve_model_path(options.model.model);
  job.model_options = load_options(options.model);
  job.vocabulary = vocabulary_sources(options.model.vocab);
  set_thread_count(options.threads);

  // One image: its lines. A batch: a progress display instead, and a summary.
  const bool json_to_stdout = job.json_path == kJsonToStandardOutput;
  std::ostream& console = json_to_stdout ? std::cerr : std::cout;
  std::optional<ProgressReporter> progress;
  bool batch = false;
  size_t done_at_start = 0;
  ExplainCallbacks callbacks;
  callbacks.started = [&](const ExplainStart& start) {
    batch = start.images > 1;
    done_at_start = start.done_at_start;
    const ProgressStyle style =
        batch ? progress_style(options.quiet, isatty(STDERR_FILENO) != 0) : ProgressStyle::Quiet;
    progress.emplace(style, start.images, start.done_at_start, std::cerr);
  };
  callbacks.explained = [&](const ImageResult& result) {
    if (batch) return;
    for (const std::string& line : console_lines(result)) console << line << '\n';
    console.flush();
  };
  callbacks.batch.failed = [&](size_t, const Error& error) {
    progress->note(std::string("clipxai: ") + error.what());
  };
  callbacks.batch.progress = [&](size_t done, size_t failed) {
    progress->update(done_at_start + done, failed);
  };
  const ExplainSummary summary = run_explain_job(job, callbacks, std::cout);
  if (progress) progress->finish();
  std::cerr << summary.timings;
  if (batch) {
    const ExplainStart& start = summary.start;
    console << "explained " << start.images - summary.outcome.failed << " of " << start.images
            << " images";
    if (start.done_at_start > 0) console << " (" << start.done_at_start << " already done)";
    if (summary.outcome.failed > 0) console << ", " << summary.outcome.failed << " failed";
    console << " -> " << summary.log_path << '\n';
  }
  return summary.outcome.failed > 0 ? kExitUsageOrInput : kExitOk;
}

}  // namespace clipxai
