#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "common/version.h"

namespace fanout::cli {
namespace {

// Levenshtein distance, for "did you mean" suggestions.
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The closest of `names` to `word`, if close enough to be a typo.
std::string Closest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& name : names) {
    const size_t d = Distance(word, name);
    if (d < best_distance) {
      best = name;
      best_distance = d;
    }
  }
  return best;
}

std::string Suggest(const std::string& word, const std::vector<std::string>& names) {
  const std::string closest = Closest(word, names);
  return closest.empty() ? "" : fmt::format(" (did you mean '{}'?)", closest);
}

// The deepest subcommand that was parsed, and its name as typed ("fanout submit exec").
const CLI::App* Deepest(const CLI::App& app, std::string& where) {
  const CLI::App* at = &app;
  while (true) {
    const std::vector<CLI::App*> subs = at->get_subcommands();
    if (subs.empty()) return at;
    at = subs.front();
    where += " " + at->get_name();
  }
}

// One line for a parse error, with a suggestion for a misspelled command or
// flag, instead of CLI11's own words.
std::string Explain(const CLI::App& app, const CLI::ParseError& e, std::string& where) {
  const CLI::App* at = Deepest(app, where);
  // Words a subcommand did not know fall through to its parents: all of them.
  const std::vector<std::string> extras = app.remaining(true);
  if (extras.empty()) return e.what();
  // A misspelled flag first (its value is an extra too), then a misspelled command.
  auto flag = std::find_if(extras.begin(), extras.end(),
                           [](const std::string& word) { return word.starts_with("-"); });
  if (flag != extras.end()) {
    std::vector<std::string> flags;
    for (const CLI::App* level = at; level != nullptr; level = level->get_parent()) {
      for (const CLI::Option* option : level->get_options()) {
        for (const std::string& name : option->get_lnames()) flags.push_back("--" + name);
      }
    }
    const std::string name = flag->substr(0, flag->find('='));
    return fmt::format("unknown flag '{}'{}", name, Suggest(name, flags));
  }
  const std::string& first = extras.front();
  std::vector<std::string> commands;
  for (const CLI::App* sub : at->get_subcommands({})) commands.push_back(sub->get_name());
  if (!commands.empty()) {
    return fmt::format("unknown command '{}'{}", first, Suggest(first, commands));
  }
  return fmt::format("unexpected argument '{}'", first);
}

}  // namespace

int ExitFor(const Error& error) {
  switch (error.code) {
    case Error::Code::kUnavailable:
      return kExitUnreachable;
    case Error::Code::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitFailed;
  }
}

CLI::Validator EndpointCheck() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.empty()) return "";  // "none", where a flag allows it
        for (const char* scheme : {"tcp://", "ipc://", "inproc://"}) {
          if (value.starts_with(scheme)) return "";
        }
        if (value.find("://") == std::string::npos) {
          return fmt::format("'{}' has no scheme: write tcp://{}", value, value);
        }
        return fmt::format("'{}' is not a ZeroMQ endpoint (tcp://host:port)", value);
      },
      "ENDPOINT");
}

std::optional<std::shared_ptr<const Keys>> TakeKeys(const GlobalFlags& global, Role role,
                                                    std::string_view command) {
  if (global.keys.empty()) return std::shared_ptr<const Keys>();
  Result<std::shared_ptr<const Keys>> keys = Keys::Load(global.keys, role);
  if (!keys) {
    fmt::print(stderr, "fanout {}: {}\n", command, keys.error().message);
    return std::nullopt;
  }
  return *keys;
}

CLI::Option* AddInsecureFlag(CLI::App& cmd, bool& insecure) {
  return cmd
      .add_flag("--insecure", insecure,
                "without --keys, listen beyond loopback anyway: anyone who can reach the port "
                "is trusted")
      ->envname("FANOUT_INSECURE");
}

CLI::Option* AddHttpFlag(CLI::App& cmd, std::string& address, const std::string& env,
                         const std::string& what) {
  return cmd
      .add_option("--http", address,
                  fmt::format("HOST:PORT of {} (empty: none; with keys it asks for the keys' "
                              "http.token; beyond loopback only with keys or --insecure)",
                              what))
      ->envname(env)
      ->capture_default_str();
}

CLI::Option* AddCoordinatorFlag(CLI::App& cmd, std::string& endpoint) {
  return cmd.add_option("--coordinator", endpoint, "the coordinator's clients endpoint")
      ->envname("FANOUT_SUBMIT_TO")
      ->check(EndpointCheck())
      ->capture_default_str();
}

int Main(int argc, char** argv) {
  CLI::App app("fanout: a coordinator, workers and a ledger, to run many things at once", "fanout");
  app.set_version_flag("--version", std::string(kVersion));
  app.require_subcommand(1);
  app.fallthrough();  // global flags work after the subcommand too
  app.get_formatter()->column_width(40);

  GlobalFlags global;
  app.add_option("--log-level", global.log_level, "trace, debug, info, warn, error or off")
      ->envname("FANOUT_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--keys", global.keys,
                 "the cluster's keys (fanout keygen DIR): CURVE on every connection")
      ->envname("FANOUT_KEYS")
      ->check(CLI::ExistingDirectory);

  const Command commands[] = {
      AddCoordinator(app, global), AddWorker(app, global), AddSubmit(app, global),
      AddJobs(app, global),        AddWatch(app, global),  AddResult(app, global),
      AddCancel(app, global),      AddStatus(app, global), AddPokedex(app, global),
      AddLedger(app, global),      AddDemo(app, global),   AddHealth(app, global),
      AddKeygen(app, global),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "fanout";
    const std::string what = Explain(app, e, where);
    fmt::print(stderr, "{}: {} (see {} --help)\n", where, what, where);
    return kExitUsage;
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return kExitUsage;
}

}  // namespace fanout::cli
