// Where a run's time went, by phase, for `clipxai explain --timings` and the "timings" object of
// its JSON report.
//
// Phases (wall-clock seconds, summed over the run):
//   load       reading the model archive and the tokenizer, moving the weights to the device
//   decode     reading, decoding and preprocessing images. This runs on worker threads beside
//              the model, so it is the sum over the workers and overlaps the other phases.
//   vision     the vision tower's forward passes (for every image, all its prompts)
//   text       the text tower's forward passes (the blocks before the start layer once per run,
//              the rest per image)
//   relevance  the backward pass and the relevance rollout
//   rendering  upsampling the maps and drawing the overlays
//   writing    encoding and writing overlays, raw maps, results.jsonl, run.json, report.html
// Every phase but decode runs on the main thread, one at a time, so those add up to at most the
// run's total; the rest of the total is start-up, enumeration and waiting for decoded images.
// On a GPU the phases synchronise the device before reading the clock (relevance.cpp), so
// asynchronous kernels are charged to the phase that launched them.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace clipxai {

enum class Phase { Load, Decode, Vision, Text, Relevance, Rendering, Writing };
inline constexpr size_t kPhaseCount = 7;

// "load", "decode", ... as in the JSON.
const char* to_string(Phase phase);

// Thread-safe: decode workers add to it while the main thread does.
class Timings {
 public:
  using Clock = std::chrono::steady_clock;

  void add(Phase phase, Clock::duration elapsed);
  double seconds(Phase phase) const;

 private:
  std::array<std::atomic<int64_t>, kPhaseCount> nanoseconds_{};
};

// Charges the time from its construction to its destruction to `phase`; does nothing when
// `timings` is null, so callers can time unconditionally.
class PhaseTimer {
 public:
  PhaseTimer(Timings* timings, Phase phase)
      : timings_(timings), phase_(phase), start_(Timings::Clock::now()) {}
  ~PhaseTimer() {
    if (timings_ != nullptr) timings_->add(phase_, Timings::Clock::now() - start_);
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  Timings* timings_;
  Phase phase_;
  Timings::Clock::time_point start_;
};

// {"load": s, "decode": s, ..., "writing": s, "total": total_seconds, "images": images}.
nlohmann::json timings_json(const Timings& timings, double total_seconds, size_t images);

// The same as a small table for standard error, one phase a line with its share of the total
// and, where images > 0, its time per image.
std::string format_timings(const Timings& timings, double total_seconds, size_t images);

}  // namespace clipxai
