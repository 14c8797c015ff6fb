#include <signal.h>

#include <memory>

#include "cli/commands.h"
#include "common/log.h"
#include "common/signals.h"
#include "coordinator/coordinator.h"

namespace fanout::cli {

Command AddCoordinator(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "coordinator", "Run the scheduler: workers connect to it, clients submit jobs to it");
  auto options = std::make_shared<coordinator::CoordinatorOptions>();
  auto heartbeat_ms = std::make_shared<int>(500);
  auto task_timeout_ms = std::make_shared<int64_t>(300'000);
  auto grace_s = std::make_shared<double>(30);
  cmd->add_option("--workers-endpoint", options->workers_endpoint, "where workers connect")
      ->envname("FANOUT_WORKERS_ENDPOINT")
      ->check(EndpointCheck())
      ->capture_default_str();
  cmd->add_option("--clients-endpoint", options->clients_endpoint, "where clients submit jobs")
      ->envname("FANOUT_CLIENTS_ENDPOINT")
      ->check(EndpointCheck())
      ->capture_default_str();
  options->scheduler.ledger = "tcp://127.0.0.1:5557";
  cmd->add_option("--ledger", options->scheduler.ledger,
                  "the ledger for bank jobs, as workers reach it (empty: no bank jobs)")
      ->envname("FANOUT_LEDGER")
      ->check(EndpointCheck())
      ->capture_default_str();
  cmd->add_option("--heartbeat-ms", *heartbeat_ms,
                  "heartbeat interval; a worker silent for 3 intervals is dead")
      ->envname("FANOUT_HEARTBEAT_MS")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  cmd->add_option("--max-attempts", options->scheduler.max_attempts,
                  "runs of a task before it fails, when a job does not say")
      ->envname("FANOUT_MAX_ATTEMPTS")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--task-timeout-ms", *task_timeout_ms,
                  "a task running longer (its worker alive but stuck) is run again elsewhere, "
                  "when a job does not say (0: never)")
      ->envname("FANOUT_TASK_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{86'400'000}))
      ->capture_default_str();
  cmd->add_option("--journal", options->journal,
                  "SQLite file of accepted jobs and finished results: a restarted coordinator "
                  "resumes its jobs (empty: none, jobs die with the coordinator)")
      ->envname("FANOUT_JOURNAL")
      ->capture_default_str();
  cmd->add_option("--grace-s", *grace_s,
                  "after SIGTERM, seconds running jobs may take to finish before they are ended")
      ->envname("FANOUT_GRACE_S")
      ->check(CLI::Range(0.0, 86'400.0))
      ->capture_default_str();
  auto keep_h = std::make_shared<double>(24);
  cmd->add_option("--keep-results-h", *keep_h,
                  "hours an ended job's results are kept in the journal (fanout result, watch)")
      ->envname("FANOUT_KEEP_RESULTS_H")
      ->check(CLI::Range(0.0, 24.0 * 366))
      ->capture_default_str();
  cmd->add_option("--ready-file", options->ready_file,
                  "write the bound endpoints here as JSON once listening");
  AddHttpFlag(*cmd, options->http, "FANOUT_HTTP", "the dashboard, /metrics and /api");
  AddInsecureFlag(*cmd, options->insecure);
  return {cmd, [options, heartbeat_ms, task_timeout_ms, grace_s, keep_h, &global] {
            Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
            if (!signals) return kExitFailed;
            if (Status s = InitLogging("coordinator", global.log_level); !s) {
              fmt::print(stderr, "fanout coordinator: {}\n", s.error().message);
              return kExitUsage;
            }
            std::optional<std::shared_ptr<const Keys>> keys =
                TakeKeys(global, Role::kCoordinator, "coordinator");
            if (!keys) return kExitUsage;
            options->keys = *keys;
            if (options->keys && !options->scheduler.ledger.empty()) {
              if (Result<std::string> ledger = options->keys->ServerKey(Role::kLedger); !ledger) {
                fmt::print(stderr, "fanout coordinator: {} (or --ledger '' for no bank jobs)\n",
                           ledger.error().message);
                return kExitUsage;
              }
            }
            options->scheduler.heartbeat_interval = milliseconds(*heartbeat_ms);
            options->scheduler.task_timeout = milliseconds(*task_timeout_ms);
            options->grace_period = milliseconds(static_cast<int64_t>(*grace_s * 1000));
            options->keep_results = milliseconds(static_cast<int64_t>(*keep_h * 3'600'000));
            return coordinator::RunCoordinator(*options, signals->fd());
          }};
}

}  // namespace fanout::cli
