// `fanout watch ID` follows a job from anywhere, ending as its `submit`
// would (same output, same exit status; Ctrl-C stops watching, not the job);
// `fanout result ID` prints a finished job's summary and results.

#include <signal.h>
#include <unistd.h>

#include <memory>

#include "cli/commands.h"
#include "cli/printer.h"
#include "client/job_client.h"
#include "client/timeline.h"
#include "common/log.h"
#include "common/signals.h"

namespace fanout::cli {
namespace {

struct FollowFlags {
  std::string coordinator = "tcp://127.0.0.1:5556";
  std::string job_id;
  bool json = false;
  bool quiet = false;
  std::vector<std::string> timelines;
};

void AddFollowFlags(CLI::App& cmd, FollowFlags& f) {
  cmd.add_option("job", f.job_id, "the job's id (fanout jobs lists them)")->required();
  AddCoordinatorFlag(cmd, f.coordinator);
  cmd.add_flag("--json", f.json, "print one JSON summary on the last line of stdout");
  cmd.add_flag("-q,--quiet", f.quiet, "no live log, no table");
  cmd.add_option("--timeline", f.timelines,
                 "draw the job: FILE.svg (a picture) or FILE.json (a Chrome trace); repeatable")
      ->allow_extra_args(false);
}

// `until_now`: the job as it is (result), not to its end (watch).
int RunFollow(const char* name, const FollowFlags& flags, const GlobalFlags& global,
              bool until_now) {
  Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) return kExitFailed;
  if (Status s = InitLogging(name, global.log_level); !s) {
    fmt::print(stderr, "fanout {}: {}\n", name, s.error().message);
    return kExitUsage;
  }
  for (const std::string& path : flags.timelines) {
    if (Status s = client::CheckTimelinePath(path); !s) {
      fmt::print(stderr, "fanout {}: {}\n", name, s.error().message);
      return kExitUsage;
    }
  }
  std::optional<std::shared_ptr<const Keys>> keys = TakeKeys(global, Role::kClient, name);
  if (!keys) return kExitUsage;
  client::JobClient client({.endpoint = flags.coordinator, .keys = *keys});
  std::FILE* human = flags.json ? stderr : stdout;
  LivePrinter printer({.out = human,
                       .per_task = !flags.quiet && !until_now,
                       .progress = !flags.quiet && isatty(fileno(stderr)) ? stderr : nullptr});
  Result<client::JobReport> report =
      client.Watch(flags.job_id, printer, until_now ? -1 : signals->fd(), until_now);
  if (!report) {
    fmt::print(stderr, "fanout {}: {}\n", name, report.error().message);
    return ExitFor(report.error());
  }
  if (until_now && report->done.job_id().empty()) {
    fmt::print(stderr,
               "fanout result: job {} is still running: `fanout watch {}` follows it to its end\n",
               flags.job_id, flags.job_id);
    return kExitFailed;
  }
  if (report->interrupted) {
    fmt::print(stderr, "stopped watching job {}: it goes on (fanout watch {} again)\n",
               flags.job_id, flags.job_id);
    return kExitInterrupted;
  }
  return EndOfJob(*report, {.json = flags.json, .quiet = flags.quiet, .timelines = flags.timelines},
                  printer);
}

}  // namespace

Command AddWatch(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "watch",
      "Follow a job from anywhere: its results so far, then live, ending as its submit would");
  auto f = std::make_shared<FollowFlags>();
  AddFollowFlags(*cmd, *f);
  return {cmd, [f, &global] { return RunFollow("watch", *f, global, /*until_now=*/false); }};
}

Command AddResult(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "result", "The summary and results of a finished job (kept for --keep-results-h hours)");
  auto f = std::make_shared<FollowFlags>();
  AddFollowFlags(*cmd, *f);
  return {cmd, [f, &global] { return RunFollow("result", *f, global, /*until_now=*/true); }};
}

}  // namespace fanout::cli
