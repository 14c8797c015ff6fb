#include <signal.h>

#include <memory>

#include "cli/commands.h"
#include "common/log.h"
#include "common/signals.h"
#include "ledger/service.h"

namespace fanout::cli {

Command AddLedger(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "ledger", "Keep the bank accounts: transfers applied once, durably, under a mutex");
  auto options = std::make_shared<ledger::LedgerOptions>();
  cmd->add_option("--endpoint", options->endpoint, "where workers and coordinators connect")
      ->envname("FANOUT_LEDGER_ENDPOINT")
      ->check(EndpointCheck())
      ->capture_default_str();
  cmd->add_option("--db", options->db, "SQLite file of the books (:memory: keeps nothing)")
      ->envname("FANOUT_LEDGER_DB")
      ->capture_default_str();
  cmd->add_option("--threads", options->threads, "request handler threads (0: one per core)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd->add_option("--ready-file", options->ready_file,
                  "write the bound endpoint here as JSON once listening");
  AddHttpFlag(*cmd, options->http, "FANOUT_LEDGER_HTTP", "the ledger's /metrics");
  AddInsecureFlag(*cmd, options->insecure);
  return {cmd, [options, &global] {
            Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
            if (!signals) return kExitFailed;
            if (Status s = InitLogging("ledger", global.log_level); !s) {
              fmt::print(stderr, "fanout ledger: {}\n", s.error().message);
              return kExitUsage;
            }
            std::optional<std::shared_ptr<const Keys>> keys =
                TakeKeys(global, Role::kLedger, "ledger");
            if (!keys) return kExitUsage;
            options->keys = *keys;
            return ledger::RunLedger(*options, signals->fd());
          }};
}

}  // namespace fanout::cli
