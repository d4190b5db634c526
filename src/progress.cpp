#include "clipxai/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "clipxai/error.h"

namespace clipxai {
namespace {

constexpr int kBarWidth = 30;
constexpr std::chrono::milliseconds kBarInterval{100};
constexpr std::chrono::seconds kLineInterval{10};

// Images per second finished by this process; none until one has finished.
std::optional<double> rate(const ProgressState& state) {
  const size_t finished_here = state.done - state.done_at_start;
  if (finished_here == 0 || !(state.elapsed_seconds > 0)) return std::nullopt;
  return finished_here / state.elapsed_seconds;
}

std::string eta(const ProgressState& state) {
  const std::optional<double> per_second = rate(state);
  if (state.done >= state.total) return format_duration(0);
  return per_second ? format_duration((state.total - state.done) / *per_second) : "--";
}

std::string rate_text(const ProgressState& state) {
  const std::optional<double> per_second = rate(state);
  if (!per_second) return "--";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", *per_second);
  return text;
}

int percent(const ProgressState& state) {
  return state.total == 0 ? 100 : static_cast<int>(100 * state.done / state.total);
}

}  // namespace

ProgressStyle progress_style(bool quiet, bool stderr_is_terminal) {
  if (quiet) return ProgressStyle::Quiet;
  return stderr_is_terminal ? ProgressStyle::Bar : ProgressStyle::Lines;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const long long total = std::llround(seconds);
  char text[32];
  if (total < 60) {
    std::snprintf(text, sizeof text, "%llds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof text, "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%lldh%02lldm", total / 3600, total % 3600 / 60);
  }
  return text;
}

std::string format_progress_bar(const ProgressState& state) {
  const size_t filled = state.total == 0
                            ? kBarWidth
                            : std::min<size_t>(kBarWidth, kBarWidth * state.done / state.total);
  const std::string total = std::to_string(state.total);
  std::string done = std::to_string(state.done);
  done.insert(0, total.size() > done.size() ? total.size() - done.size() : 0, ' ');
  std::string text = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '-') + "]  " +
                     done + "/" + total + "  " + std::to_string(percent(state)) + "%  " +
                     rate_text(state) + " img/s  ETA " + eta(state);
  if (state.failed > 0) text += "  " + std::to_string(state.failed) + " failed";
  return text;
}

std::string format_progress_line(const ProgressState& state) {
  std::string text = "clipxai: " + std::to_string(state.done) + "/" + std::to_string(state.total) +
                     " images (" + std::to_string(percent(state)) + "%), " + rate_text(state) +
                     " images/s, ETA " + eta(state);
  if (state.failed > 0) text += ", " + std::to_string(state.failed) + " failed";
  return text;
}

ProgressReporter::ProgressReporter(ProgressStyle style, size_t total, size_t done_at_start,
                                   std::ostream& out, Clock::time_point start)
    : style_(style), out_(out), start_(start), last_print_(start) {
  state_.total = total;
  state_.done = done_at_start;
  state_.done_at_start = done_at_start;
}

void ProgressReporter::update(size_t done, size_t failed, Clock::time_point now) {
  state_.done = done;
  state_.failed = failed;
  const auto since_print = now - last_print_;
  const bool due = style_ == ProgressStyle::Bar
                       ? since_print >= kBarInterval || done >= state_.total
                       : since_print >= kLineInterval;
  if (style_ != ProgressStyle::Quiet && (!printed_ || due)) print(now);
}

void ProgressReporter::note(const std::string& line) {
  if (style_ == ProgressStyle::Bar && printed_) {
    out_ << "\r\x1b[K" << message_line(line) << '\n'
         << '\r' << format_progress_bar(state_) << "\x1b[K" << std::flush;
  } else {
    out_ << message_line(line) << '\n' << std::flush;
  }
}

void ProgressReporter::finish(Clock::time_point now) {
  if (style_ == ProgressStyle::Quiet) return;
  print(now);
  if (style_ == ProgressStyle::Bar) out_ << '\n' << std::flush;
}

void ProgressReporter::print(Clock::time_point now) {
  state_.elapsed_seconds = std::chrono::duration<double>(now - start_).count();
  if (style_ == ProgressStyle::Bar) {
    // Back to the line's start, redraw, erase what a longer previous text left.
    out_ << '\r' << format_progress_bar(state_) << "\x1b[K" << std::flush;
  } else {
    out_ << format_progress_line(state_) << '\n' << std::flush;
  }
  last_print_ = now;
  printed_ = true;
}

}  // namespace clipxai
