// The `fanout` command line: one function per subcommand, each adding its
// flags to the app and returning what runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace fanout::cli {

// Exit statuses (DESIGN.md): all ok, some tasks failed, bad usage,
// coordinator unreachable.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitInterrupted = 130;

struct GlobalFlags {
  std::string log_level = "info";
};

// A subcommand and what runs it once its flags are parsed.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command AddCoordinator(CLI::App& app, const GlobalFlags& global);
Command AddWorker(CLI::App& app, const GlobalFlags& global);
Command AddSubmit(CLI::App& app, const GlobalFlags& global);
Command AddStatus(CLI::App& app, const GlobalFlags& global);
Command AddDemo(CLI::App& app, const GlobalFlags& global);
Command AddPokedex(CLI::App& app, const GlobalFlags& global);
Command AddLedger(CLI::App& app, const GlobalFlags& global);
Command AddHealth(CLI::App& app, const GlobalFlags& global);

int Main(int argc, char** argv);

}  // namespace fanout::cli
