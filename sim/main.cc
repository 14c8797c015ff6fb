// fanout_sim: the scheduler under the deterministic simulator (sim/).
//
//   fanout_sim --seeds 1000          seeds 1..1000; one JSON line at the end
//   fanout_sim --seed 42 --trace     one seed, every event printed
//
// A violation prints the seed, the invariant, the last events before it and
// the command that replays it. Exit status: 0 no violation, 1 some.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "sim/simulation.h"

int main(int argc, char** argv) {
  using namespace fanout;
  CLI::App app("fanout_sim: seeded fault schedules against the real scheduler (JSON)");
  uint64_t seed = 0;
  uint64_t seeds = 0;
  uint64_t first = 1;
  sim::SimOptions options;
  app.add_option("--seed", seed, "run this one seed");
  app.add_option("--seeds", seeds, "run this many seeds, from --first")->excludes("--seed");
  app.add_option("--first", first, "the first seed of --seeds")->capture_default_str();
  app.add_option("--steps", options.steps, "events of the fault phase of each run")
      ->capture_default_str();
  app.add_option("--faults", options.faults,
                 "0 none, 1 workers and clients die, 2 and the coordinator and ledger, pauses, "
                 "duplicates, 3 and garbage")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  app.add_flag("--trace", options.trace, "print every event (with --seed)");
  std::string log_level = "off";
  app.add_option("--log-level", log_level,
                 "the scheduler's own log lines, on stderr (debug, info, ...: with --trace)")
      ->capture_default_str();
  app.add_option("--dir", options.dir, "where the journals go (default: $TMPDIR or /tmp)");
  unsigned threads = 1;
  app.add_option("--threads", threads, "seeds run on this many threads at once (0: one per core)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));  // the scheduler's own lines
  if (seed == 0 && seeds == 0) seeds = 100;

  const uint64_t from = seed != 0 ? seed : first;
  const uint64_t count = seed != 0 ? 1 : seeds;
  uint64_t events = 0, jobs = 0, violations = 0, crashes = 0, deaths = 0;
  std::vector<uint64_t> bad;
  uint64_t hash = 0;
  std::mutex mu;
  const TimePoint start = Now();
  // Each thread takes the next seed; each run is independent (its own
  // world and journal) and its result does not depend on the thread.
  uint64_t next = from;
  auto work = [&] {
    while (true) {
      uint64_t s;
      {
        std::lock_guard lock(mu);
        if (next >= from + count) return;
        s = next++;
      }
      const sim::SimResult r = sim::RunSeed(s, options);
      std::lock_guard lock(mu);
      events += r.events;
      jobs += r.jobs;
      crashes += r.coordinator_crashes;
      deaths += r.worker_crashes;
      hash = r.trace_hash;
      if (!r.violations.empty()) {
        ++violations;
        bad.push_back(s);
        fmt::print("{}\n", r.violations[0].report);
        std::fflush(stdout);
      }
    }
  };
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<uint64_t>(threads, count));
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  std::sort(bad.begin(), bad.end());
  const double secs = std::max(1e-6, ToMillis(Now() - start) / 1000);
  nlohmann::json out = {
      {"seeds", count},
      {"first_seed", from},
      {"steps", options.steps},
      {"faults", options.faults},
      {"events", events},
      {"events_per_s", std::round(static_cast<double>(events) / secs)},
      {"seconds", std::round(secs * 100) / 100},
      {"seeds_per_min", std::round(static_cast<double>(count) / secs * 60)},
      {"threads", threads},
      {"jobs", jobs},
      {"coordinator_crashes", crashes},
      {"worker_crashes", deaths},
      {"violations", violations},
      {"violating_seeds", bad},
  };
  if (count == 1) out["trace_hash"] = fmt::format("{:016x}", hash);
  fmt::print("{}\n", out.dump());
  return violations == 0 ? 0 : 1;
}
