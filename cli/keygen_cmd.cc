// `fanout keygen DIR`: a cluster's CURVE keys; `--add NAME`: one member's own.
#include <filesystem>
#include <memory>

#include "cli/commands.h"

namespace fanout::cli {

Command AddKeygen(CLI::App& app, const GlobalFlags&) {
  CLI::App* cmd = app.add_subcommand(
      "keygen",
      "Make a cluster's keys in DIR (never over old ones); give every process --keys DIR");
  struct Flags {
    std::string dir;
    std::string add;
    std::string role = "worker";
    bool if_missing = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("dir", f->dir, "the directory to write (made owner-only)")->required();
  cmd->add_option("--add", f->add,
                  "instead, a key pair of its own for one member, in DIR/members/NAME, admitted");
  cmd->add_option("--role", f->role, "the member's role, with --add")
      ->check(CLI::IsMember({"worker", "client"}))
      ->capture_default_str();
  cmd->add_flag("--if-missing", f->if_missing,
                "keep the keys DIR already holds and exit 0 (a deployment's one-shot step)");
  return {cmd, [f] {
            if (!f->add.empty()) {
              Result<std::string> member =
                  AddMember(f->dir, f->add, f->role == "client" ? Role::kClient : Role::kWorker);
              if (!member) {
                fmt::print(stderr, "fanout keygen: {}\n", member.error().message);
                return kExitUsage;
              }
              fmt::print(
                  "{} made: copy it to {}'s host and run it with --keys {}\n"
                  "{} admits it now (delete its line there to shut it out)\n",
                  *member, f->add, *member, f->dir + "/authorized_keys");
              return kExitOk;
            }
            if (f->if_missing && std::filesystem::exists(f->dir + "/authorized_keys")) {
              fmt::print("{} already holds a cluster's keys: kept\n", f->dir);
              return kExitOk;
            }
            if (Status s = KeyGen(f->dir); !s) {
              fmt::print(stderr, "fanout keygen: {}\n", s.error().message);
              return kExitUsage;
            }
            fmt::print(
                "keys for a cluster in {0}: a pair per role (coordinator, ledger, worker, "
                "client),\nauthorized_keys and http.token. Give every process --keys {0} (or "
                "FANOUT_KEYS={0});\n{0}/README says which files each host needs.\n",
                f->dir);
            return kExitOk;
          }};
}

}  // namespace fanout::cli
