// The `fanout` command line: one function per subcommand, each adding its
// flags to the app and returning what runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/security.h"

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
  std::string keys;  // --keys DIR: the cluster's keys (fanout keygen); empty: none
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
Command AddJobs(CLI::App& app, const GlobalFlags& global);
Command AddWatch(CLI::App& app, const GlobalFlags& global);
Command AddResult(CLI::App& app, const GlobalFlags& global);
Command AddCancel(CLI::App& app, const GlobalFlags& global);
Command AddKeygen(CLI::App& app, const GlobalFlags& global);

// The exit status for an error from a client call: 3 when the coordinator
// cannot be reached (or cannot take jobs now), 2 for bad usage (a wrong
// endpoint, a rejected job), 1 otherwise (an unknown job).
int ExitFor(const Error& error);

// The keys `role` takes from --keys (null without it). A bad key file is
// said on stderr ("fanout <command>: ...") and gives nullopt: exit 2.
std::optional<std::shared_ptr<const Keys>> TakeKeys(const GlobalFlags& global, Role role,
                                                    std::string_view command);
// Adds --insecure (env FANOUT_INSECURE) to a server's subcommand.
CLI::Option* AddInsecureFlag(CLI::App& cmd, bool& insecure);

// --http HOST:PORT (env `env`): what the process serves there (`what`).
CLI::Option* AddHttpFlag(CLI::App& cmd, std::string& address, const std::string& env,
                         const std::string& what);

// Adds --coordinator (env FANOUT_SUBMIT_TO), checked to be an endpoint.
CLI::Option* AddCoordinatorFlag(CLI::App& cmd, std::string& endpoint);
// A CLI11 check that a value is a ZeroMQ endpoint: "tcp://host:port", ...
CLI::Validator EndpointCheck();

int Main(int argc, char** argv);

}  // namespace fanout::cli
