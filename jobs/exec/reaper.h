// Reaper: a small process per worker that kills the worker's commands when
// the worker dies, however it dies (SIGKILL included).
//
// PR_SET_PDEATHSIG reaches only a direct child, and a command's own
// children (`sh -c 'sleep 9; ...'`) would outlive the worker. So every
// command runs in a process group of its own, the worker tells the reaper
// each group it starts and ends, and the reaper, which outlives the worker,
// notices its death (the end of their socket) and kills every group still
// listed: SIGTERM, then SIGKILL a moment later, well within a second.
//
// A command that leaves its group (setsid, as a daemon does) escapes; only
// a cgroup would catch it.
//
// Add and Remove are thread-safe (one datagram each on a SOCK_SEQPACKET pair).
#pragma once

#include <sys/types.h>

#include <memory>

#include "common/result.h"

namespace fanout::jobs::exec {

class Reaper {
 public:
  // Forks the reaper. Safe in a threaded process: the child touches only
  // memory allocated before the fork and calls only async-signal-safe functions.
  static Result<std::unique_ptr<Reaper>> Start();
  ~Reaper();  // the reaper sees the end of the socket and kills what is left

  void Add(pid_t pgid);
  void Remove(pid_t pgid);
  pid_t pid() const { return pid_; }

 private:
  Reaper(int fd, pid_t pid) : fd_(fd), pid_(pid) {}
  void Say(int op, pid_t pgid);

  int fd_;
  pid_t pid_;
};

}  // namespace fanout::jobs::exec
