#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "client/job_client.h"
#include "client/local_cluster.h"
#include "client/timeline.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/term.h"
#include "pokedex/site.h"

namespace fanout::cli {
namespace {

struct DemoFlags {
  int workers = 0;
  uint32_t count = 20;
  int64_t iterations = 2'000'000;
  bool quick = false;
  std::string out = "fanout-report";
};

// A progress line while a run goes, on a terminal only; cleared before the
// run's row is printed.
class Progress : public client::JobObserver {
 public:
  Progress(std::string what, bool shown) : what_(std::move(what)), shown_(shown) {}
  ~Progress() override {
    if (drawn_) fmt::print("\r\x1b[K");
  }
  void OnDone(const client::JobReport& report, const client::TaskRecord&) override { Draw(report); }
  void OnTick(const client::JobReport& report) override { Draw(report); }

 private:
  void Draw(const client::JobReport& report) {
    if (!shown_) return;
    fmt::print("\r\x1b[K  {}: {}/{} tasks, {:.1f} s", what_, report.finished, report.tasks.size(),
               ToMillis(Now() - started_) / 1000);
    std::fflush(stdout);
    drawn_ = true;
  }
  std::string what_;
  bool shown_;
  bool drawn_ = false;
  TimePoint started_ = Now();
};

// What the report page shows of one run.
struct Row {
  std::string job, label, wall, speedup, verdict, picture;
  bool right;
};

std::string Plain(std::string text) {  // the verdict without terminal colours
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b') {
      while (i < text.size() && text[i] != 'm') ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

Status WriteIndex(const std::string& dir, const std::vector<Row>& rows) {
  std::string html = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fanout demo</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{padding:3px 12px;text-align:left}tr:nth-child(even){background:#f4f4f4}
.bad{color:#c62828}figure{margin:1.5em 0}</style></head><body>
<h1>fanout demo</h1>
<p>Twenty tasks a run. Each picture has a lane per worker thread or coroutine slot and a bar per
task, from its start to its end.</p>
<table><tr><th>job</th><th>model</th><th>wall time</th><th>speed-up</th><th>result</th></tr>
)";
  for (const Row& r : rows) {
    html +=
        fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td></tr>\n", r.job,
                    r.label, r.wall, r.speedup, r.right ? "" : " class=\"bad\"", r.verdict);
  }
  html += "</table>\n";
  for (const Row& r : rows) {
    html +=
        fmt::format("<figure><img src=\"{}\" alt=\"{} {}\"></figure>\n", r.picture, r.job, r.label);
  }
  html += "</body></html>\n";
  std::ofstream out(dir + "/index.html");
  out << html;
  if (!out) return Unavailable("cannot write {}/index.html", dir);
  return {};
}

// One row of the table: a job under a model (and a mode, for bank jobs).
struct Run {
  std::string job;
  std::string label;  // "threads", "async/locked", "sync x2"
  pb::JobSpec spec;
  bool baseline = false;  // the job's sync run: speed-ups are against it
};

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

bool WebIsRight(const client::JobReport& report) {
  if (report.done.ok() != report.tasks.size()) return false;
  for (const client::TaskRecord& task : report.tasks) {
    const auto& entry = pokedex::Pokedex()[report.spec.web().start() + task.index - 2];
    if (task.result.text() != entry.name) return false;
  }
  return true;
}

// What the result column says, and whether the run is as it should be
// (unsafe transfers are expected to lose money: that is the lesson).
std::pair<std::string, bool> Verdict(const client::JobReport& report, const Style& style) {
  const uint32_t n = static_cast<uint32_t>(report.tasks.size());
  switch (report.spec.kind_case()) {
    case pb::JobSpec::kMath:
      if (MathIsRight(report)) return {style.Green(fmt::format("all {} values right", n)), true};
      return {style.Red("WRONG VALUES"), false};
    case pb::JobSpec::kWeb:
      if (WebIsRight(report)) return {style.Green(fmt::format("all {} names right", n)), true};
      return {style.Red(fmt::format("{} of {} pages failed", report.done.failed(), n)), false};
    case pb::JobSpec::kBank: {
      const pb::LedgerSnapshot& l = report.done.ledger();
      if (!l.error().empty()) return {style.Red("ledger: " + l.error()), false};
      const int64_t lost = l.expected_sum() - l.sum();
      const bool safe = report.spec.bank().mode() != pb::UNSAFE;
      if (lost == 0) {
        return {style.Green(fmt::format("sum {} right", l.sum())), report.done.failed() == 0};
      }
      const std::string text =
          fmt::format("sum {}: {} {}", l.sum(), std::abs(lost), lost > 0 ? "lost" : "created");
      return {safe ? style.Red(text) : style.Yellow(text), !safe};
    }
    case pb::JobSpec::KIND_NOT_SET:
      break;
  }
  return {"", false};
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
    Run run{"bank", fmt::format("{}/{}", ModelName(model), ModeName(mode)), spec(model, 1),
            model == pb::SYNC};
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
  return runs;
}

int RunDemo(const DemoFlags& flags, const GlobalFlags& global) {
  Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) return kExitFailed;
  if (Status s = InitLogging("demo", global.log_level); !s) return kExitUsage;
  const int workers = flags.workers > 0 ? flags.workers : std::max(2, static_cast<int>(Cores()));
  const int64_t iterations = flags.quick ? flags.iterations / 10 : flags.iterations;
  const Style style = Style::For(stdout);
  auto fail = [](const std::string& what) {
    fmt::print(stderr, "fanout demo: {}\n", what);
    return kExitFailed;
  };

  fmt::print(
      "Starting a local cluster: a coordinator, {} workers, a ledger and a Pokédex site "
      "(100 ms a page) on loopback...\n",
      workers);
  std::fflush(stdout);
  auto dir = client::MakeTempDir("fanout-demo");
  if (!dir) return fail(dir.error().message);
  auto site = client::StartSite("", {"--latency-ms", "100"});
  if (!site) return fail(site.error().message);
  auto ledger = client::StartLedger("", {"--db", *dir + "/ledger.db"});
  if (!ledger) return fail(ledger.error().message);
  client::ClusterOptions options;
  options.workers = workers;
  options.coordinator_flags = {"--ledger", (*ledger)->address()};
  auto cluster = client::LocalCluster::Start(options);
  if (!cluster) return fail(cluster.error().message);
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});

  fmt::print("\n{} tasks a run; math: {} iterations each; bank: 5 accounts of 1000\n\n",
             flags.count, iterations);
  fmt::print("{}\n",
             style.Bold(fmt::format("  {:<5} {:<14} {:>7}  {:>10}  {:>8}  {}", "job", "model",
                                    "workers", "wall time", "speed-up", "result")));
  std::error_code error;
  std::filesystem::create_directories(flags.out, error);
  if (error) return fail(fmt::format("cannot make {}: {}", flags.out, error.message()));
  std::vector<Row> rows;
  double baseline_ms = 0;
  bool all_right = true;
  std::string last_job;
  for (const Run& run : Plan(flags, (*site)->address(), workers, iterations)) {
    if (!last_job.empty() && run.job != last_job) fmt::print("\n");
    last_job = run.job;
    Result<client::JobReport> report = [&] {
      Progress progress(fmt::format("{} under {}", run.job, run.label), style.enabled());
      return client.Run(run.spec, progress, signals->fd());
    }();
    if (!report) return fail(report.error().message);
    if (report->done.reason() == "cancelled by the client") {
      fmt::print(stderr, "fanout demo: interrupted; stopping everything it started\n");
      return kExitInterrupted;
    }
    if (run.baseline) baseline_ms = report->wall_ms;
    const auto [verdict, right] = Verdict(*report, style);
    all_right &= right;
    fmt::print("  {:<5} {:<14} {:>7}  {:>10}  {:>7.2f}x  {}\n", run.job, run.label,
               report->done.workers_used(), HumanDuration(report->wall_ms),
               baseline_ms / report->wall_ms, verdict);
    std::fflush(stdout);
    std::string name = fmt::format("{}-{}", run.job, run.label);
    std::replace(name.begin(), name.end(), '/', '-');
    std::replace(name.begin(), name.end(), ' ', '-');
    const std::string title =
        fmt::format("{} under {}: {}", run.job, run.label, HumanDuration(report->wall_ms));
    for (const char* ext : {".svg", ".json"}) {
      if (Status s = client::WriteTimeline(*report, flags.out + "/" + name + ext, title); !s) {
        return fail(s.error().message);
      }
    }
    rows.push_back({run.job, run.label, HumanDuration(report->wall_ms),
                    fmt::format("{:.2f}x", baseline_ms / report->wall_ms), Plain(verdict),
                    name + ".svg", right});
  }
  if (Status s = WriteIndex(flags.out, rows); !s) return fail(s.error().message);
  fmt::print(
      "\nweb: threads and async overlap the waits. math: only more cores help (threads in C++, "
      "or processes);\nasync runs CPU work on one thread, as asyncio. bank: without a lock "
      "concurrent transfers lose money.\n");
  fmt::print("\nTimelines of every run (SVG, and Chrome traces for Perfetto): {}/index.html\n",
             flags.out);
  return all_right ? kExitOk : kExitFailed;
}

}  // namespace

Command AddDemo(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Start a local cluster, run web, math and bank under every model, print the table, clean up");
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
  return {cmd, [f, &global] { return RunDemo(*f, global); }};
}

}  // namespace fanout::cli
