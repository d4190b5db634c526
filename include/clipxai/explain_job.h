// A whole `clipxai explain` run as a library call: inputs listed and sharded (batch.h), the model
// and tokenizer loaded, one Session (engine.h) for all images, resume, decoding ahead, the
// per-image failure policy (batch_run.h), and the sinks: overlays and raw maps under OUT,
// OUT/results.jsonl and OUT/run.json (results_log.h), OUT/report.html (html_report.h), and the
// JSON document (report.h).
//
// Outputs of an input go to OUT/<output base>__<prompt slug>.png (and .npy with save_raw): the
// output base mirrors the input tree (batch.h), the slug is output.h's. Every finished image is
// appended to results.jsonl at once; a resumed run skips images whose latest record is complete
// for the same prompts. OUT/run.json holds the run's header ("clipxai_version", "model",
// "method", and for a shard "shard": {"index": K, "count": N}, so merge can tell one missing);
// resuming with other settings is an Error(Usage). The --json document may not be one of the
// run's inputs or its own files (atomic_file.h's refuse_overwriting).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <torch/types.h>

#include "clipxai/batch.h"
#include "clipxai/batch_run.h"
#include "clipxai/engine.h"
#include "clipxai/render.h"
#include "clipxai/report.h"
#include "clipxai/tokenizer.h"

namespace clipxai {

inline constexpr const char* kJsonToStandardOutput = "-";

struct ExplainJob {
  std::string image;               // FILE, DIR or @LIST (batch.h)
  std::vector<std::string> texts;  // prompts
  std::string texts_from;          // more prompts, one per line of this file; empty: none
  // A sentence explained after those prompts, followed by each of its noun phrases (phrases.h),
  // their spans recorded in the results; empty: none.
  std::string phrases;
  std::optional<Shard> shard;  // empty: every input
  bool resume = false;
  std::string model_path;  // the checkpoint (the executables resolve the default model)
  LoadOptions model_options;
  int64_t max_pixels = kDefaultMaxPixels;  // image.h: larger images fail, each on its own
  VocabularySources vocabulary;
  torch::Device device = torch::kCPU;
  std::string out_dir = "clipxai-out";
  std::string json_path;  // empty: no document; kJsonToStandardOutput: `json_out`
  ExplainSettings settings;
  OverlayStyle overlay;
  bool save_raw = false;
  bool timings = false;  // measure the phases (timings.h) and add "timings" to the document
  BatchRunOptions batch;
};

struct ExplainStart {
  size_t images = 0;         // inputs of this run (of its shard)
  size_t done_at_start = 0;  // already complete in OUT/results.jsonl (resume)
};

struct ExplainCallbacks {
  // Once the inputs are known, before the first image.
  std::function<void(const ExplainStart&)> started;
  // Each image explained and written, with its result object.
  std::function<void(const ImageResult&)> explained;
  // Progress, failures (each an image's Error(Input)) and cancelling, as batch_run.h.
  BatchCallbacks batch;
};

struct ExplainSummary {
  ExplainStart start;
  BatchOutcome outcome;
  std::string log_path;  // OUT/results.jsonl
  std::string timings;   // the timings table (timings.h) when asked for, else empty
};

// Fails before any work for unusable outputs or prompts (Error(Usage) / Error(Input)), with
// Error(Model) for the model or vocabulary; an image that fails is recorded and the run goes on.
// `json_out` receives the document when json_path is kJsonToStandardOutput.
ExplainSummary run_explain_job(const ExplainJob& job, const ExplainCallbacks& callbacks,
                               std::ostream& json_out);

}  // namespace clipxai
