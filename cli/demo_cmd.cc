#include <signal.h>

#include <memory>
#include <vector>

#include "cli/commands.h"
#include "client/job_client.h"
#include "client/local_cluster.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/term.h"

namespace fanout::cli {
namespace {

struct DemoFlags {
  int workers = 0;
  uint32_t count = 20;
  int64_t iterations = 2'000'000;
  bool quick = false;
};

struct Run {
  pb::Model model;
  uint32_t workers;
};

// Quiet while a run goes: one line saying what is running.
class DemoObserver : public client::JobObserver {};

// Every value is right when each task's number is start + iterations: the
// loop adds 1 per iteration and loses nothing for these starts.
bool MathIsRight(const client::JobReport& report) {
  if (report.done.ok() != report.tasks.size()) return false;
  for (const client::TaskRecord& task : report.tasks) {
    const double expected = report.spec.math().start() + (task.index - 1) +
                            static_cast<double>(report.spec.math().iterations());
    if (!task.result.ok() || task.result.number() != expected) return false;
  }
  return true;
}

int RunDemo(const DemoFlags& flags, const GlobalFlags& global) {
  Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) return kExitFailed;
  if (Status s = InitLogging("demo", global.log_level); !s) return kExitUsage;
  const int workers = flags.workers > 0 ? flags.workers : std::max(2, static_cast<int>(Cores()));
  const int64_t iterations = flags.quick ? flags.iterations / 10 : flags.iterations;
  const Style style = Style::For(stdout);

  fmt::print("Starting a local cluster: 1 coordinator and {} workers on loopback...\n", workers);
  std::fflush(stdout);
  auto cluster = client::LocalCluster::Start({.workers = workers});
  if (!cluster) {
    fmt::print(stderr, "fanout demo: {}\n", cluster.error().message);
    return kExitFailed;
  }
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});

  const std::vector<Run> runs = {
      {pb::SYNC, 1}, {pb::THREADS, 1}, {pb::ASYNC, 1}, {pb::SYNC, static_cast<uint32_t>(workers)}};
  fmt::print("\nmath: {} runs of {} iterations each\n\n", flags.count, iterations);
  fmt::print("{}\n",
             style.Bold(fmt::format("  {:<6} {:<9} {:>7}  {:>10}  {:>8}  {}", "job", "model",
                                    "workers", "wall time", "speed-up", "result")));
  double baseline_ms = 0;
  bool all_right = true;
  for (const Run& run : runs) {
    pb::JobSpec spec;
    spec.set_model(run.model);
    spec.set_count(flags.count);
    spec.set_max_workers(run.workers);
    spec.mutable_math()->set_start(1);
    spec.mutable_math()->set_iterations(static_cast<uint64_t>(iterations));
    DemoObserver quiet;
    Result<client::JobReport> report = client.Run(spec, quiet, signals->fd());
    if (!report) {
      fmt::print(stderr, "fanout demo: {}\n", report.error().message);
      return kExitFailed;
    }
    if (!report->done.reason().empty()) {
      fmt::print(stderr, "fanout demo: interrupted; stopping the cluster\n");
      return kExitInterrupted;
    }
    if (baseline_ms == 0) baseline_ms = report->wall_ms;
    const bool right = MathIsRight(*report);
    all_right &= right;
    fmt::print("  {:<6} {:<9} {:>7}  {:>10}  {:>7.2f}x  {}\n", "math", ModelName(run.model),
               report->done.workers_used(), HumanDuration(report->wall_ms),
               baseline_ms / report->wall_ms,
               right ? style.Green(fmt::format("all {} values right", flags.count))
                     : style.Red("WRONG VALUES"));
    std::fflush(stdout);
  }
  fmt::print(
      "\nthreads and more processes use both cores; async, like asyncio, runs CPU work on "
      "one thread.\n");
  return all_right ? kExitOk : kExitFailed;
}

}  // namespace

Command AddDemo(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "demo", "Start a local cluster, run the comparison of models, print the table, clean up");
  auto f = std::make_shared<DemoFlags>();
  cmd->add_option("--workers", f->workers, "worker processes (0: the number of cores, at least 2)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd->add_option("--count", f->count, "tasks per run")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--iterations", f->iterations, "math iterations per task")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--quick", f->quick, "a tenth of the math iterations");
  return {cmd, [f, &global] { return RunDemo(*f, global); }};
}

}  // namespace fanout::cli
