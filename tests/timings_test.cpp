#include "clipxai/timings.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace clipxai {
namespace {

using std::chrono::milliseconds;

TEST(Timings, AddsUpPerPhaseAcrossThreads) {
  Timings timings;
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) timings.add(Phase::Decode, milliseconds(1));
    });
  }
  for (auto& worker : workers) worker.join();
  timings.add(Phase::Vision, milliseconds(250));
  EXPECT_DOUBLE_EQ(timings.seconds(Phase::Decode), 4.0);
  EXPECT_DOUBLE_EQ(timings.seconds(Phase::Vision), 0.25);
  EXPECT_DOUBLE_EQ(timings.seconds(Phase::Text), 0.0);
}

TEST(Timings, PhaseTimerChargesItsLifetimeOrNothingWithoutTimings) {
  Timings timings;
  {
    PhaseTimer timer(&timings, Phase::Writing);
    std::this_thread::sleep_for(milliseconds(20));
  }
  { PhaseTimer ignored(nullptr, Phase::Writing); }
  EXPECT_GE(timings.seconds(Phase::Writing), 0.02);
  EXPECT_LT(timings.seconds(Phase::Writing), 1.0);
  EXPECT_EQ(timings.seconds(Phase::Load), 0.0);
}

TEST(Timings, JsonHasEveryPhaseTheTotalAndTheImageCount) {
  Timings timings;
  timings.add(Phase::Load, milliseconds(500));
  timings.add(Phase::Rendering, milliseconds(125));
  const nlohmann::json json = timings_json(timings, 2.0, 16);
  const nlohmann::json expected = {{"load", 0.5},    {"decode", 0.0},    {"vision", 0.0},
                                   {"text", 0.0},    {"relevance", 0.0}, {"rendering", 0.125},
                                   {"writing", 0.0}, {"total", 2.0},     {"images", 16}};
  EXPECT_EQ(json, expected);
}

TEST(Timings, TableGivesSharesAndPerImageTimes) {
  Timings timings;
  timings.add(Phase::Load, milliseconds(500));
  timings.add(Phase::Vision, milliseconds(800));
  const std::string table = format_timings(timings, 2.0, 8);
  EXPECT_EQ(table.rfind("timings (seconds, 8 images):\n", 0), 0u) << table;
  EXPECT_NE(table.find("  load          0.500   25.0%\n"), std::string::npos) << table;
  EXPECT_NE(table.find("  vision        0.800   40.0%    0.1000 per image\n"), std::string::npos)
      << table;
  EXPECT_NE(table.find("  total         2.000\n"), std::string::npos) << table;
  EXPECT_EQ(format_timings(timings, 2.0, 1).rfind("timings (seconds, 1 image):\n", 0), 0u);
}

}  // namespace
}  // namespace clipxai
