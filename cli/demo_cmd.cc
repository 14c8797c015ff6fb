#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "cli/comparison.h"
#include "client/job_client.h"
#include "client/local_cluster.h"
#include "client/timeline.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/term.h"
#include "jobs/bank/bank.h"
#include "pokedex/site.h"

namespace fanout::cli {
namespace {

struct DemoFlags {
  int workers = 0;
  uint32_t count = 20;
  int64_t iterations = 2'000'000;
  bool quick = false;
  std::string out = "fanout-report";
  std::string http = "127.0.0.1:0";  // the coordinator's dashboard; port 0: any free one
};

// One row of the table: a job under a model (and a mode, for bank jobs).
struct Run {
  std::string job;
  std::string label;  // "threads", "async/locked", "sync x2"
  pb::JobSpec spec;
  bool baseline = false;  // the job's sync run: speed-ups and values are against it
};

// The web runs fetch the demo's own site: their names must be the Pokédex's.
jobs::Verdict WebVerdict(const client::JobReport& report) {
  const uint32_t n = static_cast<uint32_t>(report.tasks.size());
  for (const client::TaskRecord& task : report.tasks) {
    const auto& entry = pokedex::Pokedex()[report.spec.web().start() + task.index - 2];
    if (!task.done || task.result.text() != entry.name) {
      return {false, fmt::format("{} of {} pages failed", report.done.failed(), n)};
    }
  }
  return {true, fmt::format("all {} names right", n)};
}

std::vector<Run> Plan(const DemoFlags& flags, const std::string& site, int workers,
                      int64_t iterations) {
  std::vector<Run> runs;
  auto spec = [&](pb::Model model, uint32_t max_workers) {
    pb::JobSpec s;
    s.set_model(model);
    s.set_count(flags.count);
    s.set_max_workers(max_workers);
    return s;
  };
  for (pb::Model model : {pb::SYNC, pb::THREADS, pb::ASYNC}) {
    Run run{"web", std::string(ModelName(model)), spec(model, 1), model == pb::SYNC};
    run.spec.mutable_web()->set_url_template(site + "/pokedex/{n}");
    run.spec.mutable_web()->set_start(1);
    run.spec.mutable_web()->set_retries(2);
    runs.push_back(std::move(run));
  }
  for (auto [model, n] :
       {std::pair{pb::SYNC, 1}, {pb::THREADS, 1}, {pb::ASYNC, 1}, {pb::SYNC, workers}}) {
    Run run{"math", n > 1 ? fmt::format("sync x{}", n) : std::string(ModelName(model)),
            spec(model, static_cast<uint32_t>(n)), model == pb::SYNC && n == 1};
    run.spec.mutable_math()->set_start(1);
    run.spec.mutable_math()->set_iterations(static_cast<uint64_t>(iterations));
    runs.push_back(std::move(run));
  }
  std::vector<std::pair<pb::Model, pb::TransferMode>> bank = {{pb::SYNC, pb::UNSAFE}};
  for (pb::Model model : {pb::THREADS, pb::ASYNC}) {
    for (pb::TransferMode mode : {pb::UNSAFE, pb::LOCKED, pb::ATOMIC})
      bank.push_back({model, mode});
  }
  for (auto [model, mode] : bank) {
    Run run{"bank", fmt::format("{}/{}", ModelName(model), jobs::bank::ModeName(mode)),
            spec(model, 1), model == pb::SYNC};
    pb::BankJob* b = run.spec.mutable_bank();
    b->set_accounts(5);
    b->set_initial(1000);
    b->set_amount_max(100);
    b->set_seed(1);
    b->set_mode(mode);
    b->set_verify_ms(100);
    b->set_gap_us(100);
    runs.push_back(std::move(run));
  }
  // The user's own commands: sleep waits like a page, so async overlaps it.
  for (pb::Model model : {pb::SYNC, pb::ASYNC}) {
    Run run{"exec", fmt::format("{} sleep", ModelName(model)), spec(model, 1), model == pb::SYNC};
    pb::ExecJob* e = run.spec.mutable_exec();
    e->add_command("sleep");
    for (uint32_t i = 0; i < flags.count; ++i) e->add_items("0.1");
    runs.push_back(std::move(run));
  }
  return runs;
}

int RunDemo(const DemoFlags& flags, const GlobalFlags& global) {
  Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) return kExitFailed;
  if (Status s = InitLogging("demo", global.log_level); !s) return kExitUsage;
  const int workers = flags.workers > 0 ? flags.workers : std::max(2, static_cast<int>(Cores()));
  const int64_t iterations = flags.quick ? flags.iterations / 10 : flags.iterations;
  auto fail = [](const std::string& what) {
    fmt::print(stderr, "fanout demo: {}\n", what);
    return kExitFailed;
  };

  fmt::print(
      "Starting a local cluster: a coordinator, {} workers, a ledger and a Pokédex site "
      "(100 ms a page) on loopback...\n",
      workers);
  std::fflush(stdout);
  auto dir = client::TempDir::Make("fanout-demo");
  if (!dir) return fail(dir.error().message);
  auto site = client::StartSite("", {"--latency-ms", "100"});
  if (!site) return fail(site.error().message);
  auto ledger = client::StartLedger("", {"--db", *dir / "ledger.db"});
  if (!ledger) return fail(ledger.error().message);
  client::ClusterOptions options;
  options.workers = workers;
  options.coordinator_flags = {"--ledger", (*ledger)->address()};
  options.worker_flags = {"--allow-exec", "--exec-allow", "sleep"};
  if (!flags.http.empty())
    options.coordinator_flags.insert(options.coordinator_flags.end(), {"--http", flags.http});
  auto cluster = client::LocalCluster::Start(options);
  if (!cluster) return fail(cluster.error().message);
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  if (!(*cluster)->http_url().empty()) {
    fmt::print("Watch it live: {}/ (the dashboard, while the demo runs)\n", (*cluster)->http_url());
  }

  fmt::print(
      "\n{} tasks a run; math: {} iterations each; bank: 5 accounts of 1000; exec: sleep 0.1\n\n",
      flags.count, iterations);
  ComparisonTable table(stdout, flags.out);
  if (Status s = table.Open(); !s) return fail(s.error().message);
  table.PrintHeader();
  std::optional<client::JobReport> baseline;
  for (const Run& run : Plan(flags, (*site)->address(), workers, iterations)) {
    Result<client::JobReport> report = [&] {
      RunProgress progress(fmt::format("{} under {}", run.job, run.label), table.style());
      return client.Run(run.spec, progress, signals->fd());
    }();
    if (!report) return fail(report.error().message);
    if (report->interrupted) {
      fmt::print(stderr, "fanout demo: interrupted; stopping everything it started\n");
      return kExitInterrupted;
    }
    if (run.baseline) baseline = *report;
    const jobs::Verdict verdict = run.job == "web" ? WebVerdict(*report)
                                  : run.baseline   ? Judge(*report, nullptr)
                                                   : Judge(*report, &*baseline);
    if (Status s = table.Add(run.job, run.label, *report, baseline->wall_ms, verdict); !s) {
      return fail(s.error().message);
    }
  }
  if (Status s = table.WriteIndex("fanout demo", fmt::format("{} tasks a run.", flags.count)); !s) {
    return fail(s.error().message);
  }
  fmt::print(
      "\nweb: threads and async overlap the waits. math: only more cores help (threads in C++, "
      "or processes);\nasync runs CPU work on one thread, as asyncio. bank: without a lock "
      "concurrent transfers lose money.\nexec: your own commands, the same lesson: `fanout submit "
      "exec ... --compare` tells which model they want.\n");
  fmt::print("\nTimelines of every run (SVG, and Chrome traces for Perfetto): {}/index.html\n",
             flags.out);
  return table.all_right() ? kExitOk : kExitFailed;
}

}  // namespace

Command AddDemo(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Start a local cluster, run web, math, bank and exec under every model, print the table, "
      "clean up");
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
  cmd->add_option("--out", f->out, "where the timelines and index.html go")->capture_default_str();
  cmd->add_option("--http", f->http,
                  "HOST:PORT of the cluster's dashboard (port 0: any free one; loopback only)")
      ->capture_default_str();
  return {cmd, [f, &global] { return RunDemo(*f, global); }};
}

}  // namespace fanout::cli
