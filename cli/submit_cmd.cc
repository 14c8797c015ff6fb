// `fanout submit KIND [flags]`: one subcommand per job kind, each with the
// flags every job shares (here) and the kind's own (the kind adds them).

#include <signal.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "cli/commands.h"
#include "cli/comparison.h"
#include "cli/printer.h"
#include "client/job_client.h"
#include "client/report.h"
#include "client/timeline.h"
#include "common/log.h"
#include "common/signals.h"
#include "jobs/registry.h"
#include "nlohmann/json.hpp"

namespace fanout::cli {
namespace {

// The flags every kind shares.
struct SharedFlags {
  std::string coordinator = "tcp://127.0.0.1:5556";
  std::string model = "sync";
  uint32_t concurrency = 0;
  uint32_t workers = 0;
  uint32_t max_attempts = 0;
  uint32_t task_timeout_ms = 0;
  int connect_timeout_ms = 3000;
  bool json = false;
  bool quiet = false;
  std::vector<std::string> timelines;
  bool compare = false;
  std::string out;
  bool detach = false;
  uint32_t priority = jobs::kDefaultPriority;
};

void AddSharedFlags(CLI::App& cmd, SharedFlags& f) {
  AddCoordinatorFlag(cmd, f.coordinator);
  cmd.add_option("--model", f.model, "how each worker runs tasks: sync, threads or async")
      ->check(CLI::IsMember({"sync", "threads", "async"}))
      ->capture_default_str();
  cmd.add_option("--concurrency", f.concurrency,
                 "tasks in flight per worker for threads and async (0: worker's default)")
      ->check(CLI::Range(uint32_t{0}, jobs::kMaxConcurrency))
      ->capture_default_str();
  cmd.add_option("--workers", f.workers, "use at most this many workers (0: all)")
      ->capture_default_str();
  cmd.add_option("--max-attempts", f.max_attempts,
                 "runs of a task on dying or stuck workers before it fails (0: coordinator's "
                 "default)")
      ->check(CLI::Range(uint32_t{0}, jobs::kMaxAttempts))
      ->capture_default_str();
  cmd.add_option("--task-timeout-ms", f.task_timeout_ms,
                 "a task running longer is run again elsewhere (0: the kind's or the "
                 "coordinator's default)")
      ->check(CLI::Range(uint32_t{0}, jobs::kMaxTaskTimeoutMs))
      ->capture_default_str();
  cmd.add_option("--connect-timeout-ms", f.connect_timeout_ms,
                 "give up (exit 3) if the coordinator does not answer in this time")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  cmd.add_flag("--json", f.json, "print one JSON summary on the last line of stdout");
  cmd.add_flag("-q,--quiet", f.quiet, "no live log, no table");
  cmd.add_option("--timeline", f.timelines,
                 "draw the job: FILE.svg (a picture) or FILE.json (a Chrome trace); repeatable")
      ->allow_extra_args(false);
  cmd.add_flag("--compare", f.compare,
               "run the job under sync, threads and async on one worker and under sync on every "
               "worker, and print the comparison");
  cmd.add_option("--out", f.out, "with --compare: draw every run and index.html into DIR");
  cmd.add_flag("--detach", f.detach,
               "print the job id and exit at once; the job runs without this client and its "
               "results are kept (fanout watch, fanout result)");
  cmd.add_option("--priority", f.priority,
                 "where workers have --slots, free slots go to the highest priority first")
      ->check(CLI::Range(0u, jobs::kMaxPriority))
      ->capture_default_str();
}

Result<pb::JobSpec> BuildSpec(const SharedFlags& f, const jobs::SubmitFlags& kind_flags) {
  pb::JobSpec spec;
  Result<pb::Model> model = ParseModel(f.model);
  if (!model) return model.error();
  spec.set_model(*model);
  spec.set_concurrency(f.concurrency);
  spec.set_max_workers(f.workers);
  spec.set_max_attempts(f.max_attempts);
  spec.set_task_timeout_ms(f.task_timeout_ms);
  spec.set_priority(f.priority);
  *spec.mutable_origin() = client::ThisProcess();
  if (Status s = kind_flags.Fill(spec); !s) return s.error();
  if (Status s = jobs::CheckSpecSize(spec); !s) return s.error();
  if (!f.out.empty() && !f.compare) return InvalidArgument("--out goes with --compare");
  if (f.detach && f.compare) return InvalidArgument("--detach and --compare do not go together");
  if (f.detach && !f.timelines.empty()) {
    return InvalidArgument(
        "--timeline needs the client to see the job: use fanout watch --timeline");
  }
  for (const std::string& path : f.timelines) {
    if (Status s = client::CheckTimelinePath(path); !s) return s.error();
  }
  return spec;
}

// --compare: the job under each model on one worker, then under sync on
// every worker that can run it; the demo's table.
int RunCompare(const pb::JobSpec& spec, const SharedFlags& flags, client::JobClient& client,
               int signal_fd) {
  const jobs::JobKind& kind = *jobs::Kinds().For(spec);
  Result<pb::StatusReply> status = client.Status();
  if (!status) {
    fmt::print(stderr, "fanout submit: {}\n", status.error().message);
    return kExitUnreachable;
  }
  uint32_t serving = 0;
  for (const auto& w : status->workers()) {
    const bool serves =
        std::find(w.serves().begin(), w.serves().end(), kind.name()) != w.serves().end();
    serving += serves && !w.draining() ? 1 : 0;
  }
  // With --json the table goes to stderr and stdout carries only the JSON.
  ComparisonTable table(flags.json ? stderr : stdout, flags.out);
  if (Status s = table.Open(); !s) {
    fmt::print(stderr, "fanout submit: {}\n", s.error().message);
    return kExitUsage;
  }
  struct Run {
    pb::Model model;
    uint32_t workers;
  };
  std::vector<Run> runs = {{pb::SYNC, 1}, {pb::THREADS, 1}, {pb::ASYNC, 1}};
  if (serving > 1) runs.push_back({pb::SYNC, serving});
  fmt::print(flags.json ? stderr : stdout, "{} {} tasks a run, {} worker{} can run them\n\n",
             spec.count(), kind.name(), serving, serving == 1 ? "" : "s");
  table.PrintHeader();
  std::optional<client::JobReport> baseline;
  for (const Run& run : runs) {
    pb::JobSpec s = spec;
    s.set_model(run.model);
    s.set_max_workers(run.workers);
    const std::string label =
        run.workers > 1 ? fmt::format("sync x{}", run.workers) : std::string(ModelName(run.model));
    Result<client::JobReport> report = [&] {
      RunProgress progress(fmt::format("{} under {}", kind.name(), label), table.style());
      return client.Run(s, progress, signal_fd);
    }();
    if (!report) {
      fmt::print(stderr, "fanout submit: {}\n", report.error().message);
      return ExitFor(report.error());
    }
    if (report->interrupted) return kExitInterrupted;
    const jobs::Verdict verdict = Judge(*report, baseline ? &*baseline : nullptr);
    if (Status st = table.Add(std::string(kind.name()), label, *report,
                              baseline ? baseline->wall_ms : report->wall_ms, verdict);
        !st) {
      fmt::print(stderr, "fanout submit: {}\n", st.error().message);
    }
    if (!baseline) baseline = std::move(*report);
  }
  if (Status s = table.WriteIndex(fmt::format("fanout: {} compared", kind.name()),
                                  fmt::format("{} tasks a run.", spec.count()));
      !s) {
    fmt::print(stderr, "fanout submit: {}\n", s.error().message);
  }
  if (!flags.out.empty()) {
    fmt::print(flags.json ? stderr : stdout, "\nTimelines of every run: {}/index.html\n",
               flags.out);
  }
  if (flags.json) fmt::print("{}\n", table.Json().dump());
  return table.all_right() ? kExitOk : kExitFailed;
}

int RunSubmit(const jobs::SubmitFlags& kind_flags, const SharedFlags& flags,
              const GlobalFlags& global) {
  Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) return kExitFailed;
  if (Status s = InitLogging("submit", global.log_level); !s) {
    fmt::print(stderr, "fanout submit: {}\n", s.error().message);
    return kExitUsage;
  }
  Result<pb::JobSpec> spec = BuildSpec(flags, kind_flags);
  if (!spec) {
    fmt::print(stderr, "fanout submit: {}\n", spec.error().message);
    return kExitUsage;
  }
  std::optional<std::shared_ptr<const Keys>> keys = TakeKeys(global, Role::kClient, "submit");
  if (!keys) return kExitUsage;
  client::JobClient client({.endpoint = flags.coordinator,
                            .connect_timeout = milliseconds(flags.connect_timeout_ms),
                            .keys = *keys});
  if (flags.compare) return RunCompare(*spec, flags, client, signals->fd());
  if (flags.detach) {
    Result<std::string> id = client.Detach(*spec);
    if (!id) {
      fmt::print(stderr, "fanout submit: {}\n", id.error().message);
      return ExitFor(id.error());
    }
    if (flags.json) {
      fmt::print("{}\n", nlohmann::json{{"job_id", *id}}.dump());
    } else {
      fmt::print("{}\n", *id);
    }
    return kExitOk;
  }

  // With --json, stdout carries only the JSON; people read stderr.
  std::FILE* human = flags.json ? stderr : stdout;
  constexpr uint32_t kPerTaskLimit = 1000;
  LivePrinter printer({.out = human,
                       .per_task = !flags.quiet && spec->count() <= kPerTaskLimit,
                       .progress = !flags.quiet && isatty(fileno(stderr)) ? stderr : nullptr});
  Result<client::JobReport> report = client.Run(*spec, printer, signals->fd());
  if (!report) {
    fmt::print(stderr, "fanout submit: {}\n", report.error().message);
    return ExitFor(report.error());
  }
  return EndOfJob(*report, {.json = flags.json, .quiet = flags.quiet, .timelines = flags.timelines},
                  printer);
}

}  // namespace

Command AddSubmit(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "submit", "Submit a job, print its live log and results; exit 0 if every task succeeded");
  cmd->require_subcommand(1);
  auto shared = std::make_shared<SharedFlags>();
  struct KindCommand {
    CLI::App* app;
    std::unique_ptr<jobs::SubmitFlags> flags;
  };
  auto kinds = std::make_shared<std::vector<KindCommand>>();
  for (const auto& kind : jobs::Kinds().all()) {
    CLI::App* sub = cmd->add_subcommand(std::string(kind->name()), std::string(kind->summary()));
    AddSharedFlags(*sub, *shared);
    kinds->push_back({sub, kind->AddSubmitFlags(*sub)});
  }
  return {cmd, [kinds, shared, &global] {
            for (const KindCommand& k : *kinds) {
              if (k.app->parsed()) return RunSubmit(*k.flags, *shared, global);
            }
            return kExitUsage;
          }};
}

}  // namespace fanout::cli
