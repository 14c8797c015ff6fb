#include <signal.h>
#include <unistd.h>

#include <memory>

#include "cli/commands.h"
#include "cli/printer.h"
#include "client/job_client.h"
#include "client/report.h"
#include "common/log.h"
#include "common/signals.h"

namespace fanout::cli {
namespace {

struct SubmitFlags {
  std::string kind;
  std::string coordinator = "tcp://127.0.0.1:5556";
  std::string model = "sync";
  uint32_t count = 20;
  uint32_t concurrency = 0;
  uint32_t workers = 0;
  uint32_t max_attempts = 0;
  int connect_timeout_ms = 3000;
  bool json = false;
  bool quiet = false;
  // math
  double start = 1;
  int64_t iterations = 2'000'000;
};

pb::JobSpec BuildSpec(const SubmitFlags& f) {
  pb::JobSpec spec;
  spec.set_model(*ParseModel(f.model));
  spec.set_count(f.count);
  spec.set_concurrency(f.concurrency);
  spec.set_max_workers(f.workers);
  spec.set_max_attempts(f.max_attempts);
  if (f.kind == "math") {
    spec.mutable_math()->set_start(f.start);
    spec.mutable_math()->set_iterations(static_cast<uint64_t>(f.iterations));
  }
  return spec;
}

int RunSubmit(const SubmitFlags& flags, const GlobalFlags& global) {
  Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) return kExitFailed;
  if (Status s = InitLogging("submit", global.log_level); !s) {
    fmt::print(stderr, "fanout submit: {}\n", s.error().message);
    return kExitUsage;
  }
  // With --json, stdout carries only the JSON; people read stderr.
  std::FILE* human = flags.json ? stderr : stdout;
  constexpr uint32_t kPerTaskLimit = 1000;
  LivePrinter printer({.out = human,
                       .per_task = !flags.quiet && flags.count <= kPerTaskLimit,
                       .progress = !flags.quiet && isatty(fileno(stderr)) ? stderr : nullptr});
  client::JobClient client(
      {.endpoint = flags.coordinator, .connect_timeout = milliseconds(flags.connect_timeout_ms)});
  Result<client::JobReport> report = client.Run(BuildSpec(flags), printer, signals->fd());
  if (!report) {
    fmt::print(stderr, "fanout submit: {}\n", report.error().message);
    switch (report.error().code) {
      case Error::Code::kUnavailable:
        return kExitUnreachable;
      case Error::Code::kInvalidArgument:
        return kExitUsage;
      default:
        return kExitFailed;
    }
  }
  if (!flags.quiet) printer.PrintSummary(*report);
  if (flags.json) {
    fmt::print(stdout, "{}\n", client::ReportJson(*report).dump());
    std::fflush(stdout);
  }
  const pb::JobDone& done = report->done;
  if (done.reason() == "cancelled by the client") return kExitInterrupted;
  return done.ok() == done.tasks() ? kExitOk : kExitFailed;
}

}  // namespace

Command AddSubmit(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "submit", "Submit a job, print its live log and results; exit 0 if every task succeeded");
  auto f = std::make_shared<SubmitFlags>();
  cmd->add_option("kind", f->kind, "the job: math")->required()->check(CLI::IsMember({"math"}));
  cmd->add_option("--coordinator", f->coordinator, "the coordinator's clients endpoint")
      ->envname("FANOUT_SUBMIT_TO")
      ->capture_default_str();
  cmd->add_option("--model", f->model, "how each worker runs tasks: sync, threads or async")
      ->check(CLI::IsMember({"sync", "threads", "async"}))
      ->capture_default_str();
  cmd->add_option("--count", f->count, "number of tasks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--concurrency", f->concurrency,
                  "tasks in flight per worker for threads and async (0: worker's default)")
      ->capture_default_str();
  cmd->add_option("--workers", f->workers, "use at most this many workers (0: all)")
      ->capture_default_str();
  cmd->add_option("--max-attempts", f->max_attempts,
                  "runs of a task on dying workers before it fails (0: coordinator's default)")
      ->capture_default_str();
  cmd->add_option("--connect-timeout-ms", f->connect_timeout_ms,
                  "give up (exit 3) if the coordinator does not answer in this time")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "print one JSON summary on the last line of stdout");
  cmd->add_flag("-q,--quiet", f->quiet, "no live log, no table");
  CLI::Option_group* math = cmd->add_option_group("math", "math jobs");
  math->add_option("--start", f->start,
                   "starting number of the first task; task i starts at start + i - 1")
      ->capture_default_str();
  math->add_option("--iterations", f->iterations, "loop iterations per task")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return {cmd, [f, &global] { return RunSubmit(*f, global); }};
}

}  // namespace fanout::cli
