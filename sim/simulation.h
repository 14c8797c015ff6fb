// fanout's scheduler under a deterministic simulator: the real Scheduler
// and Journal, simulated time, network, workers, clients and ledger, and a
// seeded schedule of faults; invariants checked after every event.
//
//   SimResult r = RunSeed(42, SimOptions{});
//   if (!r.violations.empty()) fmt::print("{}\n", r.violations[0].report);
//   // the same seed gives the same r.trace_hash on any machine
//
// The invariants (each a name and a one-line message):
//   exactly-once   a client hears each task's result once (replays excepted,
//                  and they must agree with what it heard)
//   complete       a job that ends without a reason has every result
//   accepted-kept  a job the coordinator accepted is never unknown to it
//   credit         a worker never holds more of a job than its credit
//   live-dispatch  nothing is dispatched to a worker declared dead or draining
//   book-open      a bank job's book is open before its first transfer
//   book-closed    no transfer of a bank job is applied after its book is read
//   routing        a worker is sent only tasks of the kinds it runs
//   no-spin        the coordinator never wakes again and again at one instant
//   client-kept    a client that is still there never has its job cancelled as gone
//   ends           once faults stop, every job ends within a bound
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fanout::sim {

struct SimOptions {
  uint64_t steps = 3000;  // events in the fault phase; then calm until every job ends
  int faults = 2;         // 0: none, 1: workers and clients die, 2: and the coordinator,
                          // the ledger, pauses and duplicates, 3: and garbage
  bool trace = false;     // print every event
  std::string dir;        // where the journal goes (empty: $TMPDIR or /tmp)
};

struct Violation {
  std::string invariant;
  std::string message;
  std::string report;  // seed, invariant, message and the last events before it
};

struct SimResult {
  uint64_t seed = 0;
  uint64_t events = 0;
  uint64_t trace_hash = 0;
  uint64_t jobs = 0;  // accepted
  uint64_t coordinator_crashes = 0;
  uint64_t worker_crashes = 0;
  std::vector<Violation> violations;
};

SimResult RunSeed(uint64_t seed, const SimOptions& options);

}  // namespace fanout::sim
