// `fanout jobs [--all] [--json]`: the jobs a coordinator runs (and, with
// --all, the ones that ended lately), as Celery's `inspect` or `ray job list`.

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "client/job_client.h"
#include "client/report.h"
#include "common/log.h"
#include "common/term.h"
#include "common/text.h"

namespace fanout::cli {
namespace {

struct JobsFlags {
  std::string coordinator = "tcp://127.0.0.1:5556";
  bool all = false;
  bool json = false;
};

std::string Age(int64_t since_us, int64_t now_us) {
  const double secs = static_cast<double>(std::max<int64_t>(0, now_us - since_us)) / 1e6;
  if (secs < 60) return fmt::format("{:.0f} s", secs);
  if (secs < 3600) return fmt::format("{:.0f} min", secs / 60);
  if (secs < 86400) return fmt::format("{:.1f} h", secs / 3600);
  return fmt::format("{:.1f} d", secs / 86400);
}

int RunJobs(const JobsFlags& flags, const GlobalFlags& global) {
  if (Status s = InitLogging("jobs", global.log_level); !s) {
    fmt::print(stderr, "fanout jobs: {}\n", s.error().message);
    return kExitUsage;
  }
  std::optional<std::shared_ptr<const Keys>> keys = TakeKeys(global, Role::kClient, "jobs");
  if (!keys) return kExitUsage;
  client::JobClient client({.endpoint = flags.coordinator, .keys = *keys});
  Result<pb::JobsReply> jobs = client.Jobs(flags.all);
  if (!jobs) {
    fmt::print(stderr, "fanout jobs: {}\n", jobs.error().message);
    return ExitFor(jobs.error());
  }
  if (flags.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const pb::JobInfo& j : jobs->jobs()) out.push_back(client::JobInfoJson(j));
    fmt::print("{}\n", out.dump());
    return kExitOk;
  }
  const Style style = Style::For(stdout);
  const int64_t now_us = UnixMicros();
  if (jobs->jobs_size() == 0) {
    fmt::print("no jobs{}\n", flags.all ? "" : " running (--all lists the ones that ended too)");
    return kExitOk;
  }
  fmt::print("{}\n", style.Bold(fmt::format(
                         "{:<14} {:<5} {:<8} {:<10} {:>15} {:>7} {:>8} {:>4}  {}", "job", "kind",
                         "model", "state", "done", "workers", "age", "prio", "by")));
  for (const pb::JobInfo& j : jobs->jobs()) {
    const std::string progress =
        j.failed() > 0
            ? fmt::format("{}/{} ({} failed)", j.ok() + j.failed(), j.tasks(), j.failed())
            : fmt::format("{}/{}", j.ok(), j.tasks());
    const std::string state = fmt::format("{:<10}", j.state());
    const std::string colored = j.state() == "running" || j.state() == "done" ? style.Green(state)
                                : j.state() == "queued"                       ? style.Yellow(state)
                                                                              : style.Red(state);
    std::string by = OriginName(j.origin());
    if (j.detached()) by += ", detached";
    fmt::print("{:<14} {:<5} {:<8} {} {:>15} {:>7} {:>8} {:>4}  {}\n", Ellipsize(j.job_id(), 14),
               j.kind(), ModelName(j.model()), colored, Ellipsize(progress, 15), j.workers(),
               Age(j.ended_us() > 0 ? j.ended_us() : j.accepted_us(), now_us), j.priority(), by);
  }
  return kExitOk;
}

}  // namespace

Command AddJobs(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "jobs", "List the jobs a coordinator runs (--all: and the ones that ended lately)");
  auto f = std::make_shared<JobsFlags>();
  AddCoordinatorFlag(*cmd, f->coordinator);
  cmd->add_flag("--all", f->all, "also the jobs that ended (the most recent first)");
  cmd->add_flag("--json", f->json, "a JSON list on stdout");
  return {cmd, [f, &global] { return RunJobs(*f, global); }};
}

}  // namespace fanout::cli
