// Subprocess: a child process that cannot outlive its owner.
//
// The child is killed (SIGKILL) and reaped when the Subprocess is destroyed,
// and the kernel kills it if the owning process dies first
// (PR_SET_PDEATHSIG), so a failing test or an interrupted demo leaves nothing
// running. Signals blocked by the parent are unblocked in the child.
// Not thread-safe: one owner, and the owner's thread must outlive the child
// (the death signal follows the thread that spawned it).
//
//   auto worker = Subprocess::Spawn({bin, "worker", "--coordinator", ep});
//   if (!worker) return worker.error();
//   worker->Signal(SIGTERM);
//   std::optional<int> status = worker->Wait(std::chrono::seconds(5));
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace fanout {

class Subprocess {
 public:
  struct Options {
    std::vector<std::string> env = {};  // extra "NAME=value" entries
    std::string stdin_path = {};        // empty: inherit
    std::string stdout_path = {};       // empty: inherit
    std::string stderr_path = {};       // empty: inherit
  };

  static Result<Subprocess> Spawn(const std::vector<std::string>& argv, const Options& options);
  static Result<Subprocess> Spawn(const std::vector<std::string>& argv) {
    return Spawn(argv, Options{});
  }

  Subprocess() = default;  // no process: not running, Kill() does nothing
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // The exit status once the child has ended within `timeout`: its exit code,
  // or 128 + the signal that killed it. nullopt if it is still running.
  std::optional<int> Wait(Duration timeout);
  // SIGKILL and reap; returns the status.
  int Kill();

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  bool Reap(int options);

  pid_t pid_ = -1;
  std::optional<int> status_;
};

// The path of the running executable (to start `fanout` subcommands).
std::string SelfExecutable();

// From /proc, for benchmarks and tests: the CPU time (user + system) a
// process has used in milliseconds, and its resident memory now (VmRSS) and
// at its peak (VmHWM) in MiB.
double CpuMillis(pid_t pid);
double RssMiB(pid_t pid);
double PeakRssMiB(pid_t pid);

// Processes (not zombies, not this one) whose command line holds `marker`:
// how tests find commands and their children, to see that none was left.
std::vector<pid_t> ProcessesRunning(std::string_view marker);
// A process's parent (0 once it is gone).
pid_t ParentOf(pid_t pid);

}  // namespace fanout
