// Running one command: spawned with posix_spawn in a process group of its
// own, standard input from /dev/null (or the item), standard output
// captured up to a cap, the end of standard error kept, and its exit seen
// through a pidfd. A timeout, an output over the cap or a stop request
// sends SIGTERM to the whole group and SIGKILL kKillGrace later; when the
// command itself ends, whatever it left running in its group is killed.
//
// One state machine (Run) does all of that; it is driven by poll() on a
// pool thread (RunBlocking: the sync and threads models) or by the worker's
// event loop (RunAsync: the async model, a thousand commands on one thread).
#pragma once

#include <sys/types.h>

#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/coro.h"
#include "common/event_loop.h"
#include "common/result.h"
#include "jobs/exec/command.h"
#include "jobs/exec/reaper.h"

namespace fanout::jobs::exec {

// One command to run.
struct Invocation {
  std::vector<std::string> argv;     // argv[0] as the user wrote it
  std::string program;               // the resolved executable (ResolveProgram)
  std::vector<std::string> env;      // the complete environment, "NAME=value"
  std::string cwd;                   // empty: the worker's
  std::optional<std::string> input;  // standard input; nullopt: /dev/null
  Duration timeout{};                // zero: none
  uint64_t max_output = kDefaultMaxOutputBytes;
};

struct Outcome {
  Ending ending;
  std::string output;  // standard output, one trailing newline removed (when ok)
  std::string stderr_tail;
};

// Finds `program` as a shell would: a name without '/' in the directories
// of `path` (a PATH value), anything else relative to `cwd`. Returns its
// canonical absolute path; "not found: convx" otherwise.
Result<std::string> ResolveProgram(const std::string& program, const std::string& path,
                                   const std::string& cwd);

Outcome RunBlocking(const Invocation& invocation, Reaper* reaper, std::stop_token stop);
co::Task<Outcome> RunAsync(const Invocation& invocation, Reaper* reaper, EventLoop& loop,
                           std::stop_token stop);

}  // namespace fanout::jobs::exec
