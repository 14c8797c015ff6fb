#include <signal.h>

#include <memory>

#include "cli/commands.h"
#include "common/log.h"
#include "common/signals.h"
#include "worker/worker.h"

namespace fanout::cli {

Command AddWorker(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "worker", "Run tasks for a coordinator; start as many as you like, in any order");
  auto options = std::make_shared<worker::WorkerOptions>();
  auto heartbeat_ms = std::make_shared<int>(500);
  options->threads = Cores() + 4;
  cmd->add_option("--coordinator", options->coordinator, "the coordinator's workers endpoint")
      ->envname("FANOUT_COORDINATOR")
      ->check(EndpointCheck())
      ->capture_default_str();
  cmd->add_option("--id", options->id, "this worker's name (default: <host>-<pid>)")
      ->envname("FANOUT_WORKER_ID");
  cmd->add_option("--threads", options->threads,
                  "pool size for threads jobs that do not set --concurrency (cores + 4)")
      ->envname("FANOUT_THREADS")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--slots", options->slots,
                  "run at most this many tasks at once, of all jobs together; free slots go to "
                  "the highest priority job first (0: no cap, each job its own credit)")
      ->envname("FANOUT_SLOTS")
      ->check(CLI::Range(0u, 100'000u))
      ->capture_default_str();
  cmd->add_flag("--allow-exec", options->allow_exec,
                "run the commands of exec jobs (as this worker's user; see --exec-allow)")
      ->envname("FANOUT_ALLOW_EXEC");
  cmd->add_option("--exec-allow", options->exec_allowed,
                  "with --allow-exec, run only these programs (repeatable, or a comma-separated "
                  "list)")
      ->envname("FANOUT_EXEC_ALLOW")
      ->delimiter(',');
  cmd->add_option("--heartbeat-ms", *heartbeat_ms,
                  "heartbeat interval; a coordinator silent for 3 intervals is dead")
      ->envname("FANOUT_HEARTBEAT_MS")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  AddHttpFlag(*cmd, options->http, "FANOUT_WORKER_HTTP", "this worker's /metrics");
  AddInsecureFlag(*cmd, options->insecure)
      ->description(
          "without --keys, serve --http beyond loopback anyway: anyone who can reach it reads the "
          "metrics");
  return {cmd, [options, heartbeat_ms, &global] {
            Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
            if (!signals) return kExitFailed;
            if (Status s = InitLogging("worker", global.log_level); !s) {
              fmt::print(stderr, "fanout worker: {}\n", s.error().message);
              return kExitUsage;
            }
            std::optional<std::shared_ptr<const Keys>> keys =
                TakeKeys(global, Role::kWorker, "worker");
            if (!keys) return kExitUsage;
            options->keys = *keys;
            if (options->keys) {
              // The coordinator's key is needed now; the ledger's when a bank task comes.
              if (Result<std::string> key = options->keys->ServerKey(Role::kCoordinator); !key) {
                fmt::print(stderr, "fanout worker: {}\n", key.error().message);
                return kExitUsage;
              }
            }
            options->heartbeat_interval = milliseconds(*heartbeat_ms);
            if (!options->exec_allowed.empty() && !options->allow_exec) {
              fmt::print(stderr, "fanout worker: --exec-allow needs --allow-exec\n");
              return kExitUsage;
            }
            return worker::RunWorker(*options, signals->fd());
          }};
}

}  // namespace fanout::cli
