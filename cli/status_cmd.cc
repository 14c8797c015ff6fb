// `fanout status [--json] [--watch]`: the workers, what they run and how
// busy they are, the jobs and tasks waiting, tasks/s, the ledger's health.

#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "client/job_client.h"
#include "client/report.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/term.h"
#include "common/text.h"

namespace fanout::cli {
namespace {

struct StatusFlags {
  std::string coordinator = "tcp://127.0.0.1:5556";
  bool json = false;
  bool watch = false;
};

std::string Ago(int64_t ms) {
  if (ms < 0) return "never";
  if (ms < 1000) return fmt::format("{} ms ago", ms);
  return fmt::format("{:.1f} s ago", static_cast<double>(ms) / 1000);
}

void Print(const pb::StatusReply& s, const Style& style) {
  fmt::print("{}\n", style.Bold(fmt::format(
                         "{:<20} {:<12} {:>7} {:<9} {:>9} {:>8} {:>7} {:>12}  runs", "worker",
                         "host", "pid", "state", "in flight", "done", "failed", "heard")));
  for (const auto& w : s.workers()) {
    const std::string state = client::WorkerState(w);
    const std::string padded = fmt::format("{:<9}", state);
    const std::string shown = state == "draining" ? style.Yellow(padded)
                              : state == "busy"   ? style.Cyan(padded)
                                                  : style.Green(padded);
    const std::string flight = w.slots() > 0 ? fmt::format("{}/{}", w.inflight(), w.slots())
                                             : fmt::to_string(w.inflight());
    fmt::print("{:<20} {:<12} {:>7} {} {:>9} {:>8} {:>7} {:>12}  {}\n",
               Ellipsize(w.worker_id(), 20), Ellipsize(w.host(), 12), w.pid(), shown, flight,
               w.done(), w.failed(), Ago(w.heard_ms_ago()), client::Runs(w));
  }
  fmt::print(
      "\n{} worker{}, {} job{} running, {} task{} queued, {:.1f} tasks/s over the last 10 s\n",
      s.workers_size(), s.workers_size() == 1 ? "" : "s", s.jobs(), s.jobs() == 1 ? "" : "s",
      s.tasks_queued(), s.tasks_queued() == 1 ? "" : "s", s.tasks_per_s());
  fmt::print(
      "{} tasks dispatched, {} re-queued, {} duplicate results dropped; {} workers lost, {} "
      "left\n",
      s.tasks_dispatched(), s.tasks_requeued(), s.duplicates_dropped(), s.workers_lost(),
      s.workers_left());
  if (s.keyed()) {
    const std::string line = fmt::format("keyed (CURVE): {} connection{} refused", s.refused(),
                                         s.refused() == 1 ? "" : "s");
    fmt::print("{}\n", s.refused() > 0 ? style.Yellow(line) : line);
  } else {
    fmt::print("no keys: any process that reaches its ports is trusted\n");
  }
  if (s.ledger().endpoint().empty()) {
    fmt::print("ledger: none (this coordinator runs no bank jobs)\n");
  } else {
    const int64_t ago = s.ledger().answered_ms_ago();
    const bool healthy = ago >= 0 && ago < 15'000;
    const std::string line = fmt::format("ledger {}: {}", s.ledger().endpoint(),
                                         ago < 0 ? "has not answered" : "answered " + Ago(ago));
    fmt::print("{}\n", healthy ? style.Green(line) : style.Red(line));
  }
}

int RunStatus(const StatusFlags& flags, const GlobalFlags& global) {
  Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) return kExitFailed;
  if (Status s = InitLogging("status", global.log_level); !s) {
    fmt::print(stderr, "fanout status: {}\n", s.error().message);
    return kExitUsage;
  }
  std::optional<std::shared_ptr<const Keys>> keys = TakeKeys(global, Role::kClient, "status");
  if (!keys) return kExitUsage;
  client::JobClient client({.endpoint = flags.coordinator, .keys = *keys});
  const Style style = Style::For(stdout);
  while (true) {
    Result<pb::StatusReply> status = client.Status();
    if (!status) {
      fmt::print(stderr, "fanout status: {}\n", status.error().message);
      return ExitFor(status.error());
    }
    if (flags.watch && style.enabled()) fmt::print("\x1b[H\x1b[2J");  // redraw in place
    if (flags.json) {
      fmt::print("{}\n", client::StatusJson(*status).dump());
    } else {
      Print(*status, style);
    }
    std::fflush(stdout);
    if (!flags.watch) return kExitOk;
    // Again in a second, until Ctrl-C.
    pollfd pfd{signals->fd(), POLLIN, 0};
    if (poll(&pfd, 1, 1000) > 0) return kExitOk;
  }
}

}  // namespace

Command AddStatus(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "status", "The workers, what they run, the jobs and tasks waiting, tasks/s, the ledger");
  auto f = std::make_shared<StatusFlags>();
  AddCoordinatorFlag(*cmd, f->coordinator);
  cmd->add_flag("--json", f->json, "one JSON object on stdout (a line a second with --watch)");
  cmd->add_flag("--watch", f->watch, "again every second, until Ctrl-C");
  return {cmd, [f, &global] { return RunStatus(*f, global); }};
}

}  // namespace fanout::cli
