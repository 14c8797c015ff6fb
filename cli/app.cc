#include <fmt/format.h>

#include <cstdio>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "common/version.h"

namespace fanout::cli {

int Main(int argc, char** argv) {
  CLI::App app("fanout: a coordinator, workers and a ledger, to run many things at once", "fanout");
  app.set_version_flag("--version", std::string(kVersion));
  app.require_subcommand(1);
  app.fallthrough();  // global flags work after the subcommand too
  app.get_formatter()->column_width(40);

  GlobalFlags global;
  app.add_option("--log-level", global.log_level, "trace, debug, info, warn, error or off")
      ->envname("FANOUT_LOG_LEVEL")
      ->capture_default_str();

  const Command commands[] = {
      AddCoordinator(app, global), AddWorker(app, global),  AddSubmit(app, global),
      AddStatus(app, global),      AddPokedex(app, global), AddLedger(app, global),
      AddDemo(app, global),        AddHealth(app, global),
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
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    fmt::print(stderr, "{}: {} (see {} --help)\n", where, e.what(), where);
    return kExitUsage;
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return kExitUsage;
}

}  // namespace fanout::cli
