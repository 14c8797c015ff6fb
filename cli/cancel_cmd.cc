// `fanout cancel ID [--reason TEXT]`: ends a job from any terminal; its
// running tasks are stopped on the workers, and its client is told why.

#include <memory>

#include "cli/commands.h"
#include "client/job_client.h"
#include "common/log.h"

namespace fanout::cli {

Command AddCancel(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd =
      app.add_subcommand("cancel", "End a job from any terminal; its running tasks are stopped");
  struct Flags {
    std::string coordinator = "tcp://127.0.0.1:5556";
    std::string job_id;
    std::string reason;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("job", f->job_id, "the job's id (fanout jobs lists them)")->required();
  AddCoordinatorFlag(*cmd, f->coordinator);
  cmd->add_option("--reason", f->reason, "why: its client prints it");
  return {
      cmd, [f, &global] {
        if (Status s = InitLogging("cancel", global.log_level); !s) {
          fmt::print(stderr, "fanout cancel: {}\n", s.error().message);
          return kExitUsage;
        }
        std::optional<std::shared_ptr<const Keys>> keys = TakeKeys(global, Role::kClient, "cancel");
        if (!keys) return kExitUsage;
        client::JobClient client({.endpoint = f->coordinator, .keys = *keys});
        Result<pb::JobDone> done = client.Cancel(f->job_id, f->reason);
        if (!done) {
          fmt::print(stderr, "fanout cancel: {}\n", done.error().message);
          return ExitFor(done.error());
        }
        fmt::print("job {} cancelled: {} of {} tasks had finished ({} ok, {} failed)\n", f->job_id,
                   done->ok() + done->failed(), done->tasks(), done->ok(), done->failed());
        return kExitOk;
      }};
}

}  // namespace fanout::cli
