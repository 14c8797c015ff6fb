// The worker process: a DEALER to the coordinator, owned by one I/O thread,
// and the executors that run tasks.
//
// The I/O thread says Hello on every (re)connection, heartbeats, hands each
// task to its job's executor and forwards the results that executor threads
// push to it over inproc. It never runs a task itself, so heartbeats keep
// flowing during long CPU work. When the coordinator falls silent it drops
// the connection and reconnects with back-off (Paranoid Pirate), keeping
// results that could not be sent. SIGTERM or SIGINT drains: no new tasks,
// running ones finish and are reported, then exit 0.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/security.h"
#include "jobs/call/functions.h"

namespace fanout::worker {

struct WorkerOptions {
  std::string coordinator = "tcp://127.0.0.1:5555";
  std::string id;        // empty: "<host>-<pid>"
  uint32_t threads = 0;  // default pool size; 0: cores + 4
  Duration heartbeat_interval = milliseconds(500);
  int liveness = 3;  // silent intervals before the coordinator is presumed dead
  Duration reconnect_initial = milliseconds(250);
  Duration reconnect_max = milliseconds(8000);
  Duration executor_idle = milliseconds(5000);  // an idle thread pool is freed after this
  uint32_t slots = 0;                           // the most tasks at once, all jobs; 0: no cap
  bool allow_exec = false;                      // run the exec kind's commands
  std::vector<std::string> exec_allowed;        // only these programs (empty: any)
  // With keys (--keys), the coordinator and the ledger are reached with CURVE.
  std::shared_ptr<const Keys> keys = nullptr;
  // HOST:PORT of its /metrics (empty: none). Beyond loopback only with keys
  // (then with the keys' http.token) or `insecure`.
  std::string http;
  bool insecure = false;
  // The named functions it serves (call jobs); none: it runs no call tasks.
  std::shared_ptr<const jobs::Functions> functions = nullptr;
};

// Runs until drained after SIGINT/SIGTERM on `signal_fd`. Returns the exit
// code (1, with one line logged, when it cannot start; 2 for an --http it
// may not listen on).
int RunWorker(const WorkerOptions& options, int signal_fd);

}  // namespace fanout::worker
