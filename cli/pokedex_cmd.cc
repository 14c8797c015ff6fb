#include <signal.h>

#include <memory>

#include "cli/commands.h"
#include "common/log.h"
#include "common/signals.h"
#include "pokedex/pokedex.h"

namespace fanout::cli {

Command AddPokedex(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "pokedex", "Serve a local Pokédex site (pages 1-151) with latency and faults on demand");
  auto options = std::make_shared<pokedex::PokedexOptions>();
  auto latency_ms = std::make_shared<int>(0);
  auto jitter_ms = std::make_shared<int>(0);
  cmd->add_option("--host", options->host, "address to listen on")
      ->envname("FANOUT_POKEDEX_HOST")
      ->capture_default_str();
  cmd->add_option("--port", options->port, "port to listen on (0: a free one)")
      ->envname("FANOUT_POKEDEX_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--latency-ms", *latency_ms, "every answer but /healthz waits this long")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  cmd->add_option("--jitter-ms", *jitter_ms, "latency varies uniformly by up to this much")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  cmd->add_option("--fail-rate", options->site.fail_rate, "share of requests answered with 503")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--fail-first", options->site.fail_first,
                  "answer the first N requests to each path with 503")
      ->capture_default_str();
  cmd->add_option("--seed", options->site.seed, "seed for faults and jitter (same seed, same run)")
      ->capture_default_str();
  cmd->add_option("--ready-file", options->ready_file,
                  "write the site's URL here as JSON once listening");
  return {cmd, [options, latency_ms, jitter_ms, &global] {
            Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
            if (!signals) return kExitFailed;
            if (Status s = InitLogging("pokedex", global.log_level); !s) {
              fmt::print(stderr, "fanout pokedex: {}\n", s.error().message);
              return kExitUsage;
            }
            options->site.latency = milliseconds(*latency_ms);
            options->site.jitter = milliseconds(*jitter_ms);
            return pokedex::RunPokedex(*options, signals->fd());
          }};
}

}  // namespace fanout::cli
