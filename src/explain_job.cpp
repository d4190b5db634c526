#include "clipxai/explain_job.h"

#include <exception>
#include <filesystem>

#include <ATen/Parallel.h>

#include "clipxai/atomic_file.h"
#include "clipxai/error.h"
#include "clipxai/html_report.h"
#include "clipxai/input_file.h"
#include "clipxai/model.h"
#include "clipxai/output.h"
#include "clipxai/phrases.h"
#include "clipxai/results_log.h"
#include "clipxai/timings.h"

namespace clipxai {
namespace {

namespace fs = std::filesystem;

// Fails before any work is done when an output location is unusable.
void prepare_outputs(const ExplainJob& job) {
  std::error_code error;
  fs::create_directories(job.out_dir, error);
  if (!fs::is_directory(job.out_dir)) {
    throw usage_error("--out " + job.out_dir + ": cannot create the directory" +
                      (error ? ": " + error.message() : ""));
  }
  if (!job.json_path.empty() && job.json_path != kJsonToStandardOutput) {
    const fs::path parent = fs::path(job.json_path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent)) {
      throw usage_error("--json " + job.json_path + ": directory " + parent.string() +
                        " does not exist");
    }
    if (fs::is_directory(job.json_path)) {
      throw usage_error("--json " + job.json_path + ": is a directory");
    }
  }
}

// The --json document must not replace what the run reads or its own files: the inputs, the
// model, the prompt and vocabulary files, OUT's log, header, report and overlays.
void refuse_json_over_run_files(const ExplainJob& job, const std::vector<BatchInput>& inputs,
                                const std::vector<std::string>& slugs) {
  if (job.json_path.empty() || job.json_path == kJsonToStandardOutput) return;
  const fs::path out_dir(job.out_dir);
  std::vector<ProtectedFile> files = {{(out_dir / "results.jsonl").string(), "the results log"},
                                      {(out_dir / "run.json").string(), "the run header"},
                                      {(out_dir / "report.html").string(), "the run's report"},
                                      {job.model_path, "the model"},
                                      {job.model_options.model_config, "the model config"},
                                      {job.texts_from, "the prompt file"},
                                      {job.vocabulary.explicit_path, "the vocabulary"}};
  if (job.image.size() > 1 && job.image[0] == '@') {
    files.push_back({job.image.substr(1), "the image list"});
  }
  for (const BatchInput& input : inputs) files.push_back({input.path, "an input image"});
  // An overlay's name ends in "__<slug>.png"; only inputs whose base matches need a look.
  const std::string name = fs::path(job.json_path).filename().string();
  for (const std::string& slug : slugs) {
    for (const char* extension : {".png", ".npy"}) {
      const std::string suffix = "__" + slug + extension;
      if (name.size() <= suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      for (const BatchInput& input : inputs) {
        files.push_back({(out_dir / input.output_base).string() + suffix, "an output of the run"});
      }
    }
  }
  refuse_overwriting("--json", job.json_path, files);
}

// The prompts in order: the TEXTs, the prompt file's, then the sentence and its noun phrases,
// which alone have spans.
PhrasePrompts prompt_texts(const ExplainJob& job) {
  PhrasePrompts prompts{job.texts, {}};
  if (!job.texts_from.empty()) {
    const std::vector<std::string> from_file = read_prompts_file(job.texts_from);
    if (from_file.empty()) {
      throw usage_error(job.texts_from + ": no prompts in it (one per line)");
    }
    prompts.texts.insert(prompts.texts.end(), from_file.begin(), from_file.end());
  }
  if (!job.phrases.empty()) {
    const PhrasePrompts sentence = phrase_prompts(PhraseParser(), job.phrases, "--phrases");
    prompts.spans.resize(prompts.texts.size());
    prompts.texts.insert(prompts.texts.end(), sentence.texts.begin(), sentence.texts.end());
    prompts.spans.insert(prompts.spans.end(), sentence.spans.begin(), sentence.spans.end());
  }
  if (prompts.texts.empty()) {
    throw usage_error("no prompts: give TEXT arguments, --texts-from FILE or --phrases TEXT");
  }
  return prompts;
}

// What a worker thread hands the model: the decoded image and its model input; then, for a window
// of images together, the image's share of the vision tower's gradient-free start.
struct PreparedImage {
  DecodedImage image;
  PreprocessedImage input;
  ImageStates states;
};

// Renders and writes one image's overlays (and raw maps) as OUT/<output base>__<prompt slug>.png
// (.npy), locating each peak from the map the overlay is drawn from, and returns its result
// object.
ImageResult write_explanation(const ExplainJob& job, const BatchInput& source,
                              const DecodedImage& image, Explanation& explanation,
                              const std::vector<std::string>& slugs,
                              const std::vector<std::optional<TextSpan>>& spans, Timings* timings) {
  const fs::path base = fs::path(job.out_dir) / source.output_base;
  std::error_code error;
  fs::create_directories(base.parent_path(), error);
  if (error) {
    throw input_error(base.parent_path().string() +
                      ": cannot create the directory: " + error.message());
  }
  std::vector<std::string> overlays, raws;
  for (const std::string& slug : slugs) {
    overlays.push_back(base.string() + "__" + slug + ".png");
    if (job.save_raw) raws.push_back(base.string() + "__" + slug + ".npy");
  }
  // Overlays are drawn, then encoded and written, a thread's worth at a time on the cores the
  // model has just finished with: at most that many full-size pictures are held at once.
  const auto count = static_cast<int64_t>(explanation.prompts.size());
  const int64_t group = std::max(1, at::get_num_threads());
  std::vector<cv::Mat> pictures(static_cast<size_t>(group));
  for (int64_t first = 0; first < count; first += group) {
    const int64_t end = std::min(count, first + group);
    {
      PhaseTimer timer(timings, Phase::Rendering);
      at::parallel_for(first, end, 1, [&](int64_t begin, int64_t stop) {
        for (int64_t i = begin; i < stop; ++i) {
          const RelevanceMap map = prompt_map(explanation, static_cast<size_t>(i));
          explanation.prompts[static_cast<size_t>(i)].peak = map.peak;
          pictures[static_cast<size_t>(i - first)] = render_overlay(image.rgb, map, job.overlay);
        }
      });
    }
    PhaseTimer timer(timings, Phase::Writing);
    at::parallel_for(first, end, 1, [&](int64_t begin, int64_t stop) {
      for (int64_t i = begin; i < stop; ++i) {
        const auto p = static_cast<size_t>(i);
        write_png(overlays[p], pictures[static_cast<size_t>(i - first)]);
        if (job.save_raw) write_npy(raws[p], explanation.prompts[p].relevance.grid);
      }
    });
  }
  return image_result(source.key, explanation, overlays, raws, spans);
}

// OUT/run.json holds the run's header. A resumed run must continue the same job.
void write_run_header(const std::string& path, const nlohmann::json& header, bool resume) {
  std::error_code error;
  if (resume && fs::exists(path, error)) {
    nlohmann::json previous;
    if (const auto why = parse_json_text(read_input_file(path, "run header"), previous)) {
      throw input_error(path + ": not valid JSON (" + *why + "); remove it or use another --out");
    }
    if (previous != header) {
      const nlohmann::json patch = nlohmann::json::diff(previous, header);
      throw usage_error("--resume: " + path +
                        " is from a run with other settings (they differ at " +
                        patch.front().value("path", std::string("/")) +
                        "); resume with the same model and method, or use another --out");
    }
  }
  write_file_atomically(path, json_text(header) + "\n");
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

}  // namespace

ExplainSummary run_explain_job(const ExplainJob& job, const ExplainCallbacks& callbacks,
                               std::ostream& json_out) {
  const auto started = Timings::Clock::now();
  Timings timing_totals;
  Timings* const timings = job.timings ? &timing_totals : nullptr;
  const PhrasePrompts prompts = prompt_texts(job);
  const std::vector<std::string>& texts = prompts.texts;
  prepare_outputs(job);

  std::vector<BatchInput> inputs = enumerate_inputs(job.image, job.out_dir);
  if (job.shard) inputs = select_shard(inputs, *job.shard);
  const std::vector<std::string> slugs = unique_slugs(texts);
  refuse_json_over_run_files(job, inputs, slugs);
  std::optional<PhaseTimer> load_timer(std::in_place, timings, Phase::Load);
  ClipModel model = ClipModel::load(job.model_path, job.model_options);
  const Tokenizer tokenizer = load_tokenizer(job.vocabulary, model.embedded_vocabulary(),
                                             model.path(), model.config().vocab_size);
  model.to(job.device);
  load_timer.reset();
  const Session session(model, tokenizer, texts, job.settings, timings);
  nlohmann::json header =
      report_json(model_json(model, tokenizer.source()), session.method_json(), {}, {});
  header.erase("results");
  header.erase("errors");
  if (job.shard) header["shard"] = {{"index", job.shard->index}, {"count", job.shard->count}};
  const fs::path out_dir(job.out_dir);
  // The log first: its lock keeps a second run from overwriting this one's header.
  std::optional<PhaseTimer> header_timer(std::in_place, timings, Phase::Writing);
  ResultsLog log = job.resume ? ResultsLog::resume((out_dir / "results.jsonl").string())
                              : ResultsLog::create((out_dir / "results.jsonl").string());
  write_run_header((out_dir / "run.json").string(), header, job.resume);
  header_timer.reset();

  std::vector<const BatchInput*> pending;
  for (const BatchInput& input : inputs) {
    const LogEntry* entry = log.latest(input.key);
    if (entry == nullptr || !is_complete(*entry, texts)) pending.push_back(&input);
  }
  ExplainSummary summary;
  summary.start = {inputs.size(), inputs.size() - pending.size()};
  summary.log_path = log.path();
  if (callbacks.started) callbacks.started(summary.start);

  BatchCallbacks batch = callbacks.batch;
  batch.failed = [&](size_t index, const Error& error) {
    log.append(error_json({pending[index]->key, error.category(), error.what()}));
    if (callbacks.batch.failed) callbacks.batch.failed(index, error);
  };
  summary.outcome = run_batch<PreparedImage>(
      pending.size(),
      [&](size_t index) {
        PhaseTimer timer(timings, Phase::Decode);
        DecodedImage image = load_image(pending[index]->path, job.max_pixels);
        PreprocessedImage input = session.preprocess(image);
        return PreparedImage{std::move(image), std::move(input)};
      },
      [&](size_t index, PreparedImage& prepared) {
        Explanation explanation = session.explain(prepared.image, prepared.input, prepared.states,
                                                  timings, /*locate_peaks=*/false);
        prepared.states = {};
        const ImageResult result = write_explanation(job, *pending[index], prepared.image,
                                                     explanation, slugs, prompts.spans, timings);
        PhaseTimer timer(timings, Phase::Writing);
        log.append(image_result_json(result));
        if (callbacks.explained) callbacks.explained(result);
      },
      batch, job.batch,
      [&](std::vector<PreparedImage*>& window) {
        std::vector<const PreprocessedImage*> inputs;
        for (const PreparedImage* prepared : window) inputs.push_back(&prepared->input);
        const ImageStates states = session.prepare_images(inputs, timings);
        for (size_t i = 0; i < window.size(); ++i) {
          window[i]->states = states.image(static_cast<int64_t>(i));
        }
      });

  std::vector<std::string> images;
  for (const BatchInput& input : inputs) images.push_back(input.key);
  // A report that cannot be written (a full disk under OUT) must not cost the document, which
  // may be going elsewhere: the failure is raised once the document is out.
  std::exception_ptr report_failure;
  try {
    PhaseTimer timer(timings, Phase::Writing);
    write_run_report(out_dir, header, images, log);
  } catch (const Error&) {
    report_failure = std::current_exception();
  }
  // The timings cover everything but writing the JSON document that reports them.
  if (timings != nullptr) {
    const double total = std::chrono::duration<double>(Timings::Clock::now() - started).count();
    summary.timings = format_timings(*timings, total, pending.size());
    header["timings"] = timings_json(*timings, total, pending.size());
  }
  if (job.json_path == kJsonToStandardOutput) {
    write_run_document(json_out, header, images, log);
    json_out.flush();
  } else if (!job.json_path.empty()) {
    write_file_atomically(job.json_path,
                          [&](std::ostream& out) { write_run_document(out, header, images, log); });
  }
  if (report_failure) std::rethrow_exception(report_failure);
  return summary;
}

}  // namespace clipxai
