// Replays every seed of sim/regressions.txt (each once found a bug) and a
// few fresh ones, and checks that a run is a function of its seed alone.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "sim/simulation.h"

namespace fanout::sim {
namespace {

struct Regression {
  uint64_t seed;
  SimOptions options;
  std::string found;
};

std::vector<Regression> Regressions() {
  std::ifstream in(FANOUT_SIM_REGRESSIONS);
  std::vector<Regression> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Regression r;
    fields >> r.seed >> r.options.steps >> r.options.faults;
    std::getline(fields, r.found);
    out.push_back(r);
  }
  return out;
}

TEST(SimulatorTest, EverySeedThatOnceFoundABugPasses) {
  spdlog::set_level(spdlog::level::off);
  const std::vector<Regression> regressions = Regressions();
  ASSERT_GE(regressions.size(), 5u) << "cannot read " << FANOUT_SIM_REGRESSIONS;
  for (const Regression& r : regressions) {
    const SimResult result = RunSeed(r.seed, r.options);
    EXPECT_TRUE(result.violations.empty())
        << "seed " << r.seed << " (" << r.found << ")\n"
        << (result.violations.empty() ? "" : result.violations[0].report);
    EXPECT_GT(result.jobs, 0u) << "seed " << r.seed << " ran no job";
  }
}

TEST(SimulatorTest, ASeedGivesTheSameTraceEveryTime) {
  spdlog::set_level(spdlog::level::off);
  SimOptions options;
  options.faults = 3;
  const SimResult a = RunSeed(12345, options);
  const SimResult b = RunSeed(12345, options);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.events, b.events);
  EXPECT_NE(a.trace_hash, RunSeed(12346, options).trace_hash);
  EXPECT_GT(a.coordinator_crashes + a.worker_crashes, 0u) << "a hostile run has faults";
}

TEST(SimulatorTest, AHundredFreshSeedsAtEveryFaultLevel) {
  spdlog::set_level(spdlog::level::off);
  for (int faults = 0; faults <= 3; ++faults) {
    SimOptions options;
    options.faults = faults;
    options.steps = 2000;
    for (uint64_t seed = 50'001; seed <= 50'025; ++seed) {
      const SimResult r = RunSeed(seed, options);
      ASSERT_TRUE(r.violations.empty()) << r.violations[0].report;
    }
  }
}

}  // namespace
}  // namespace fanout::sim
