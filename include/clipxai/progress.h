// Progress of a batch run on standard error.
//
// On a terminal, one line redrawn in place (at most 10 times a second, and at the end):
//   [############------------------]  412/1000  41%  3.2 img/s  ETA 3m04s  2 failed
// Otherwise (a log file, CI), a plain line at the first image, every 10 seconds, and at the end:
//   clipxai: 412/1000 images (41%), 3.2 images/s, ETA 3m04s, 2 failed
// --quiet prints nothing. "done" counts every finished image, failed ones and those a resumed run
// found already complete; the rate counts only images finished by this process, since it
// started, and the ETA is the images left at that rate ("--" until one has finished). The
// "failed" part appears once an image failed.
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>

namespace clipxai {

enum class ProgressStyle { Quiet, Lines, Bar };

ProgressStyle progress_style(bool quiet, bool stderr_is_terminal);

struct ProgressState {
  size_t total = 0;
  size_t done = 0;           // including images already complete when the run started
  size_t done_at_start = 0;  // images already complete when the run started
  size_t failed = 0;
  double elapsed_seconds = 0;
};

// "7s", "3m04s", "2h05m"; "--" for a negative or non-finite duration.
std::string format_duration(double seconds);
std::string format_progress_bar(const ProgressState& state);
std::string format_progress_line(const ProgressState& state);

class ProgressReporter {
 public:
  using Clock = std::chrono::steady_clock;

  ProgressReporter(ProgressStyle style, size_t total, size_t done_at_start, std::ostream& out,
                   Clock::time_point start = Clock::now());

  // Call after each image with the counts so far.
  void update(size_t done, size_t failed, Clock::time_point now = Clock::now());
  // Prints one line (a failed image's message) even when quiet; a bar is cleared first and
  // redrawn below it, so the message does not mix with the bar. Written as error.h's message_line.
  void note(const std::string& line);
  // The final state; ends the bar's line.
  void finish(Clock::time_point now = Clock::now());

 private:
  void print(Clock::time_point now);

  ProgressStyle style_;
  std::ostream& out_;
  ProgressState state_;
  Clock::time_point start_;
  Clock::time_point last_print_;
  bool printed_ = false;
};

}  // namespace clipxai
