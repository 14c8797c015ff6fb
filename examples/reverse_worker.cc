// A worker of your own in C++: it registers named functions and serves them
// to `fanout submit call NAME`, with everything the built-in worker does
// (Hello, heartbeats, credit, reconnects, drain on SIGTERM).
//
//   build/bin/fanout-example-worker --coordinator tcp://127.0.0.1:5555
//   fanout submit call reverse --arg hello --arg world
//
// It serves:
//   reverse  the item's bytes, last first
//   upper    the item in capitals (ASCII)
//   fail     never returns: an error naming the item (a failed task)

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "common/log.h"
#include "common/signals.h"
#include "jobs/call/functions.h"
#include "worker/worker.h"

int main(int argc, char** argv) {
  using fanout::Result;
  fanout::worker::WorkerOptions options;
  std::string keys_dir, log_level = "info";
  CLI::App app("a fanout worker that serves reverse, upper and fail");
  app.add_option("--coordinator", options.coordinator, "the coordinator's worker endpoint");
  app.add_option("--id", options.id, "its name in fanout status (default: host-pid)");
  app.add_option("--keys", keys_dir, "the cluster's key directory (fanout keygen)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error");
  CLI11_PARSE(app, argc, argv);

  const std::pair<const char*, fanout::jobs::Function> served[] = {
      {"reverse",
       [](std::string_view s) -> Result<std::string> { return std::string(s.rbegin(), s.rend()); }},
      {"upper",
       [](std::string_view s) -> Result<std::string> {
         std::string out(s);
         for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         return out;
       }},
      {"fail",
       [](std::string_view s) -> Result<std::string> {
         return fanout::InvalidArgument("fail: refused '{}'", s);
       }},
  };
  auto functions = std::make_shared<fanout::jobs::Functions>();
  for (const auto& [name, function] : served) {
    if (fanout::Status added = functions->Add(name, function); !added) {
      std::fprintf(stderr, "fanout-example-worker: %s\n", added.error().message.c_str());
      return 1;
    }
  }
  options.functions = functions;
  if (!keys_dir.empty()) {
    auto keys = fanout::Keys::Load(keys_dir, fanout::Role::kWorker);
    if (!keys) {
      std::fprintf(stderr, "fanout-example-worker: %s\n", keys.error().message.c_str());
      return 2;
    }
    options.keys = *keys;
  }
  if (fanout::Status s = fanout::InitLogging("worker", log_level); !s) {
    std::fprintf(stderr, "fanout-example-worker: %s\n", s.error().message.c_str());
    return 2;
  }
  auto signals = fanout::SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) {
    std::fprintf(stderr, "fanout-example-worker: %s\n", signals.error().message.c_str());
    return 1;
  }
  return fanout::worker::RunWorker(options, signals->fd());
}
