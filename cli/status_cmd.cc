#include <fmt/ranges.h>

#include <memory>

#include "cli/commands.h"
#include "client/job_client.h"
#include "common/log.h"
#include "common/term.h"

namespace fanout::cli {

Command AddStatus(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand("status", "Show the workers connected to a coordinator");
  auto coordinator = std::make_shared<std::string>("tcp://127.0.0.1:5556");
  cmd->add_option("--coordinator", *coordinator, "the coordinator's clients endpoint")
      ->envname("FANOUT_SUBMIT_TO")
      ->capture_default_str();
  return {
      cmd, [coordinator, &global] {
        if (Status s = InitLogging("status", global.log_level); !s) return kExitUsage;
        client::JobClient client({.endpoint = *coordinator});
        Result<pb::StatusReply> status = client.Status();
        if (!status) {
          fmt::print(stderr, "fanout status: {}\n", status.error().message);
          return kExitUnreachable;
        }
        const Style style = Style::For(stdout);
        fmt::print("{}\n",
                   style.Bold(fmt::format("{:<24} {:<16} {:>8} {:>8} {:>9}  {:<9} runs", "worker",
                                          "host", "pid", "threads", "in flight", "state")));
        for (const auto& w : status->workers()) {
          const std::string state =
              w.draining() ? style.Yellow("draining ") : style.Green("ready    ");
          fmt::print("{:<24} {:<16} {:>8} {:>8} {:>9}  {} {}\n", w.worker_id(), w.host(), w.pid(),
                     w.concurrency(), w.inflight(), state, fmt::join(w.serves(), ", "));
        }
        fmt::print(
            "{} workers, {} jobs running; {} tasks dispatched, {} re-queued, {} "
            "duplicate results dropped, {} workers lost\n",
            status->workers_size(), status->jobs(), status->tasks_dispatched(),
            status->tasks_requeued(), status->duplicates_dropped(), status->workers_lost());
        return kExitOk;
      }};
}

}  // namespace fanout::cli
