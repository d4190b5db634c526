// `clipxai explain [OPTIONS] IMAGE [TEXT...]`: one image, a folder or a list, streamed through
// the model with decoding ahead on worker threads, every finished image recorded in
// OUT/results.jsonl.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "clipxai/atomic_file.h"
#include "clipxai/batch.h"
#include "clipxai/cli.h"
#include "clipxai/error.h"
#include "clipxai/html_report.h"
#include "clipxai/model.h"
#include "clipxai/output.h"
#include "clipxai/prefetch.h"
#include "clipxai/progress.h"
#include "clipxai/relevance.h"
#include "clipxai/report.h"
#include "clipxai/results_log.h"
#include "clipxai/timings.h"
#include "clipxai/tokenizer.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

constexpr const char* kJsonStdout = "-";
// Decoding and preprocessing are cheap next to the model on CPU: two workers keep it fed and
// leave the cores to LibTorch; four images ahead bound the memory whatever the folder's size.
constexpr int kDecodeWorkers = 2;
constexpr size_t kImagesAhead = 4;

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

std::vector<std::string> prompt_texts(const ExplainOptions& options) {
  std::vector<std::string> texts = options.texts;
  if (!options.texts_from.empty()) {
    const std::vector<std::string> from_file = read_prompts_file(options.texts_from);
    if (from_file.empty()) {
      throw usage_error(options.texts_from + ": no prompts in it (one per line)");
    }
    texts.insert(texts.end(), from_file.begin(), from_file.end());
  }
  if (texts.empty()) throw usage_error("no prompts: give TEXT arguments or --texts-from FILE");
  return texts;
}

// What a worker thread hands the model: the decoded image and its model input.
struct PreparedImage {
  DecodedImage image;
  PreprocessedImage input;
};

// Explains one image for every prompt and writes its overlays (and raw maps) as
// OUT/<output base>__<prompt slug>.png / .npy.
ImageResult explain_to_files(const ClipModel& model, const BatchInput& source,
                             const PreparedImage& prepared,
                             const std::vector<TokenizedText>& prompts,
                             const PreparedPrompts& prepared_prompts, const ExplainOptions& options,
                             Timings* timings) {
  const DecodedImage& image = prepared.image;
  std::vector<PromptRelevance> relevances =
      explain_image(model, prepared.input.pixels.to(model.device()), prepared_prompts, timings);

  std::vector<std::string> texts;
  for (const TokenizedText& prompt : prompts) texts.push_back(prompt.text);
  const std::vector<std::string> slugs = unique_slugs(texts);
  const fs::path base = fs::path(options.out_dir) / source.output_base;
  std::error_code error;
  fs::create_directories(base.parent_path(), error);
  if (error) {
    throw input_error(base.parent_path().string() +
                      ": cannot create the directory: " + error.message());
  }

  ImageResult result{source.key, image.width(), image.height(), prepared.input.crop, {}};
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string path = base.string() + "__" + slugs[i];
    PromptResult prompt{prompts[i], std::move(relevances[i]), {}, path + ".png", {}};
    if (options.save_raw) prompt.raw = path + ".npy";
    result.prompts.push_back(std::move(prompt));
  }
  // Overlays are drawn, then encoded and written, a thread's worth at a time on the cores the
  // model has just finished with: at most that many full-size pictures are held at once.
  const int64_t count = static_cast<int64_t>(result.prompts.size());
  const int64_t group = std::max(1, at::get_num_threads());
  std::vector<cv::Mat> overlays(static_cast<size_t>(group));
  for (int64_t first = 0; first < count; first += group) {
    const int64_t end = std::min(count, first + group);
    {
      PhaseTimer timer(timings, Phase::Rendering);
      at::parallel_for(first, end, 1, [&](int64_t begin, int64_t stop) {
        for (int64_t i = begin; i < stop; ++i) {
          PromptResult& prompt = result.prompts[static_cast<size_t>(i)];
          const RelevanceMap map = upsample_map(prompt.relevance.grid, prepared.input.crop,
                                                image.width(), image.height());
          prompt.peak = map.peak;
          overlays[static_cast<size_t>(i - first)] =
              render_overlay(image.rgb, map, options.overlay);
        }
      });
    }
    PhaseTimer timer(timings, Phase::Writing);
    at::parallel_for(first, end, 1, [&](int64_t begin, int64_t stop) {
      for (int64_t i = begin; i < stop; ++i) {
        const PromptResult& prompt = result.prompts[static_cast<size_t>(i)];
        write_png(*prompt.overlay, overlays[static_cast<size_t>(i - first)]);
        if (prompt.raw) write_npy(*prompt.raw, prompt.relevance.grid);
      }
    });
  }
  return result;
}

// OUT/run.json holds the run's header. A resumed run must continue the same job.
void write_run_header(const std::string& path, const nlohmann::json& header, bool resume) {
  std::error_code error;
  if (resume && fs::exists(path, error)) {
    std::ifstream file(path);
    nlohmann::json previous;
    try {
      previous = nlohmann::json::parse(file);
    } catch (const nlohmann::json::parse_error&) {
      throw input_error(path + ": not a JSON object; remove it or use another --out");
    }
    if (previous != header) {
      const nlohmann::json patch = nlohmann::json::diff(previous, header);
      throw usage_error("--resume: " + path +
                        " is from a run with other settings (they differ at " +
                        patch.front().value("path", std::string("/")) +
                        "); resume with the same model and method, or use another --out");
    }
  }
  write_file_atomically(
      path, header.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// OUT/report.html, streamed from the log like the JSON document.
void write_run_report(const fs::path& out_dir, const nlohmann::json& header,
                      const std::vector<std::string>& images, const ResultsLog& log) {
  write_file_atomically((out_dir / "report.html").string(), [&](std::ostream& page) {
    write_html_report(
        page, header, count_latest(images, log, true), count_latest(images, log, false),
        [&](bool results, const RecordVisitor& visit) {
          visit_latest(images, log, results, visit);
        },
        out_dir.string());
  });
}

// An optional start layer: left empty unless given, so that the model's default applies.
void add_start_layer_option(CLI::App& command, const std::string& name,
                            std::optional<int>& start_layer, const std::string& description) {
  command
      .add_option_function<int>(
          name, [&start_layer](const int& value) { start_layer = value; }, description)
      ->type_name("N")
      ->check(CLI::Range(-1, 1 << 20).description(""));
}

}  // namespace

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
  clipxai explain --texts-from prompts.txt --out runs/photos --resume photos/
  clipxai explain --shard "$SLURM_ARRAY_TASK_ID/8" --out "runs/part$SLURM_ARRAY_TASK_ID" photos/ "a dog"
)");
  command
      ->add_option("IMAGE", options.image,
                   "Image file (JPEG, PNG, WebP, BMP, TIFF), directory of images, or @LIST")
      ->required()
      ->type_name("IMAGE");
  command->add_option("TEXT", options.texts, "Prompts to explain (and/or --texts-from)");
  command
      ->add_option("--texts-from", options.texts_from,
                   "More prompts, one per line of this UTF-8 file (blank lines skipped)")
      ->type_name("FILE");
  command
      ->add_option("--shard", options.shard,
                   "Explain only share K of N (1 <= K <= N), e.g. 2/8; the shares 1/N..N/N cover "
                   "every image once")
      ->type_name("K/N");
  command->add_flag("--resume", options.resume,
                    "Continue the run in OUT: skip images already complete in OUT/results.jsonl");
  command->add_flag("--quiet", options.quiet, "No progress display on standard error");
  add_model_options(*command, options.model, options.vocab);
  command
      ->add_option("--out", options.out_dir,
                   "Directory for overlays, raw maps, results.jsonl and run.json")
      ->capture_default_str()
      ->type_name("DIR");
  command
      ->add_option("--json", options.json_path,
                   "Write the JSON report to this file ('-' = standard output)")
      ->type_name("PATH");
  add_start_layer_option(*command, "--start-layer", options.start_layer,
                         "First vision layer of the rollout: -1 = last only (as the notebook), "
                         "0 = all (default: the model's, `clipxai info` shows it)");
  add_start_layer_option(*command, "--start-layer-text", options.start_layer_text,
                         "First text layer of the rollout: -1 = last only, 0 = all (default: "
                         "the model's)");
  add_crop_option(*command, options.crop);
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
  command->add_flag("--timings", options.timings,
                    "Print where the time went (load, decode, vision, text, relevance, rendering, "
                    "writing) to standard error, and add it to the JSON as \"timings\"");
  add_runtime_options(*command, options.threads, options.device);
  return command;
}

int run_explain(const ExplainOptions& options) {
  const auto started = Timings::Clock::now();
  Timings timing_totals;
  Timings* const timings = options.timings ? &timing_totals : nullptr;
  const torch::Device device = parse_device(options.device);
  const std::optional<Shard> shard =
      options.shard.empty() ? std::nullopt : std::optional<Shard>(parse_shard(options.shard));
  const std::vector<std::string> texts = prompt_texts(options);
  prepare_outputs(options);
  set_thread_count(options.threads);

  std::vector<BatchInput> inputs = enumerate_inputs(options.image, options.out_dir);
  if (shard) inputs = select_shard(inputs, *shard);
  std::optional<PhaseTimer> load_timer(std::in_place, timings, Phase::Load);
  ClipModel model = ClipModel::load(resolve_model_path(options.model));
  const Tokenizer tokenizer = load_tokenizer(options.vocab, model.embedded_vocabulary(),
                                             model.path(), model.config().vocab_size);
  const std::vector<TokenizedText> prompts =
      tokenize_prompts(tokenizer, texts, model.config().context_length);
  model.to(device);
  load_timer.reset();
  // The text tower's work before the start layer is the same for every image.
  const PreparedPrompts prepared_prompts = prepare_prompts(
      model, prompts, RelevanceOptions{options.start_layer, options.start_layer_text}, timings);
  const MethodSettings method =
      method_settings(RelevanceOptions{options.start_layer, options.start_layer_text},
                      model.config(), options.crop);
  nlohmann::json header =
      report_json(model_json(model.path(), model.config(), tokenizer.source()), method, {}, {});
  header.erase("results");
  header.erase("errors");
  const fs::path out_dir(options.out_dir);
  // The log first: its lock keeps a second run from overwriting this one's header.
  std::optional<PhaseTimer> header_timer(std::in_place, timings, Phase::Writing);
  ResultsLog log = options.resume ? ResultsLog::resume((out_dir / "results.jsonl").string())
                                  : ResultsLog::create((out_dir / "results.jsonl").string());
  write_run_header((out_dir / "run.json").string(), header, options.resume);
  header_timer.reset();

  std::vector<const BatchInput*> pending;
  for (const BatchInput& input : inputs) {
    const LogEntry* entry = log.latest(input.key);
    if (entry == nullptr || !is_complete(*entry, texts)) pending.push_back(&input);
  }
  const PreprocessSpec spec{model.config().input_resolution, model.config().image_mean,
                            model.config().image_std};
  OrderedPrefetcher<PreparedImage> prefetcher(
      pending.size(),
      [&](size_t index) {
        PhaseTimer timer(timings, Phase::Decode);
        DecodedImage image = load_image(pending[index]->path);
        PreprocessedImage input = preprocess(image, spec, options.crop);
        return PreparedImage{std::move(image), std::move(input)};
      },
      kDecodeWorkers, kImagesAhead);

  // One image: its lines as before. A batch: a progress display instead.
  const bool batch = inputs.size() > 1;
  const bool json_to_stdout = options.json_path == kJsonStdout;
  std::ostream& console = json_to_stdout ? std::cerr : std::cout;
  const size_t done_at_start = inputs.size() - pending.size();
  ProgressReporter progress(
      batch ? progress_style(options.quiet, isatty(STDERR_FILENO) != 0) : ProgressStyle::Quiet,
      inputs.size(), done_at_start, std::cerr);
  size_t failed = 0;
  for (size_t i = 0; i < pending.size(); ++i) {
    const BatchInput& input = *pending[i];
    // A bad image is recorded and the run goes on; anything else (a bug, a usage error such as
    // a start layer the model lacks) stops it.
    try {
      const std::optional<PreparedImage> prepared = prefetcher.next();
      const ImageResult result =
          explain_to_files(model, input, *prepared, prompts, prepared_prompts, options, timings);
      PhaseTimer timer(timings, Phase::Writing);
      log.append(image_result_json(result));
      if (!batch) {
        for (const std::string& line : console_lines(result)) console << line << '\n';
        console.flush();
      }
    } catch (const Error& error) {
      if (error.category() != ErrorCategory::Input) throw;
      log.append(error_json({input.key, error.category(), error.what()}));
      progress.note(std::string("clipxai: ") + error.what());
      ++failed;
    }
    progress.update(done_at_start + i + 1, failed);
  }
  progress.finish();

  std::vector<std::string> images;
  for (const BatchInput& input : inputs) images.push_back(input.key);
  {
    PhaseTimer timer(timings, Phase::Writing);
    write_run_report(out_dir, header, images, log);
  }
  // The timings cover everything but writing the JSON document that reports them.
  if (timings != nullptr) {
    const double total = std::chrono::duration<double>(Timings::Clock::now() - started).count();
    std::cerr << format_timings(*timings, total, pending.size());
    header["timings"] = timings_json(*timings, total, pending.size());
  }
  if (json_to_stdout) {
    write_run_document(std::cout, header, images, log);
    std::cout.flush();
  } else if (!options.json_path.empty()) {
    write_file_atomically(options.json_path,
                          [&](std::ostream& out) { write_run_document(out, header, images, log); });
  }
  if (batch) {
    console << "explained " << inputs.size() - failed << " of " << inputs.size() << " images";
    if (done_at_start > 0) console << " (" << done_at_start << " already done)";
    if (failed > 0) console << ", " << failed << " failed";
    console << " -> " << log.path() << '\n';
  }
  return failed > 0 ? kExitUsageOrInput : kExitOk;
}

}  // namespace clipxai
