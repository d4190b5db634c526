#include "clipxai/timings.h"

#include <cstdio>

namespace clipxai {
namespace {

constexpr Phase kPhases[kPhaseCount] = {Phase::Load,   Phase::Decode,    Phase::Vision,
                                        Phase::Text,   Phase::Relevance, Phase::Rendering,
                                        Phase::Writing};

}  // namespace

const char* to_string(Phase phase) {
  switch (phase) {
    case Phase::Load:
      return "load";
    case Phase::Decode:
      return "decode";
    case Phase::Vision:
      return "vision";
    case Phase::Text:
      return "text";
    case Phase::Relevance:
      return "relevance";
    case Phase::Rendering:
      return "rendering";
    case Phase::Writing:
      return "writing";
  }
  return "?";
}

void Timings::add(Phase phase, Clock::duration elapsed) {
  nanoseconds_[static_cast<size_t>(phase)] +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
}

double Timings::seconds(Phase phase) const {
  return static_cast<double>(nanoseconds_[static_cast<size_t>(phase)].load()) * 1e-9;
}

nlohmann::json timings_json(const Timings& timings, double total_seconds, size_t images) {
  nlohmann::json json = nlohmann::json::object();
  for (Phase phase : kPhases) json[to_string(phase)] = timings.seconds(phase);
  json["total"] = total_seconds;
  json["images"] = images;
  return json;
}

std::string format_timings(const Timings& timings, double total_seconds, size_t images) {
  std::string text = "timings (seconds";
  if (images > 0) text += ", " + std::to_string(images) + (images == 1 ? " image" : " images");
  text += "):\n";
  char line[128];
  for (Phase phase : kPhases) {
    const double seconds = timings.seconds(phase);
    std::snprintf(line, sizeof line, "  %-10s %8.3f  %5.1f%%", to_string(phase), seconds,
                  total_seconds > 0 ? 100 * seconds / total_seconds : 0.0);
    text += line;
    if (images > 0 && phase != Phase::Load) {
      std::snprintf(line, sizeof line, "  %8.4f per image", seconds / static_cast<double>(images));
      text += line;
    }
    if (phase == Phase::Decode) text += "  (worker threads, beside the model)";
    text += '\n';
  }
  std::snprintf(line, sizeof line, "  %-10s %8.3f\n", "total", total_seconds);
  return text + line;
}

}  // namespace clipxai
