// The coordinator process: two ROUTER sockets (workers, clients), a DEALER
// to the ledger (bank jobs open and read their books through it) and a
// signal descriptor on one event loop, around a Scheduler. The ledger's
// endpoint is options.scheduler.ledger, also handed to workers in tasks.
//
//   CoordinatorOptions options;
//   options.workers_endpoint = "tcp://127.0.0.1:*";
//   return RunCoordinator(options, signals.fd());
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "common/security.h"
#include "coordinator/scheduler.h"

namespace fanout::coordinator {

struct CoordinatorOptions {
  // Loopback by default: listening elsewhere needs keys (or --insecure).
  std::string workers_endpoint = "tcp://127.0.0.1:5555";
  std::string clients_endpoint = "tcp://127.0.0.1:5556";
  // With keys (--keys), both sockets are CURVE servers admitting the keys
  // in authorized_keys, and the ledger is reached with CURVE too.
  std::shared_ptr<const Keys> keys = nullptr;
  // Without keys, listen beyond loopback anyway (--insecure).
  bool insecure = false;
  // The dashboard, /metrics and /api (--http HOST:PORT; empty: none). A
  // port already taken is a warning: the coordinator runs on without it.
  std::string http = "127.0.0.1:5580";
  // When set, {"workers": ..., "clients": ..., "pid": ...} is written here once
  // both sockets are bound: how tests and the demo learn free ports.
  std::string ready_file;
  // Where accepted jobs and finished results are recorded, so a restarted
  // coordinator resumes them (see Journal). Empty: no journal, and jobs
  // running when the coordinator dies are lost (their clients are told).
  std::string journal = "fanout-coordinator.db";
  // After SIGTERM, how long running jobs may go on before they are ended.
  Duration grace_period = std::chrono::seconds(30);
  // How long an ended job's summary and results stay in the journal, for
  // `fanout result` and `fanout watch` (--keep-results-h).
  Duration keep_results = std::chrono::hours(24);
  SchedulerOptions scheduler;
};

// Runs until SIGINT or SIGTERM arrives on `signal_fd`, then stops gracefully:
// new jobs are rejected, running ones have the grace period to finish (then
// they end, their clients told why), and it returns 0. A second signal ends
// it at once. Returns the exit code.
int RunCoordinator(const CoordinatorOptions& options, int signal_fd);

// A job id unique across coordinator restarts: "<random hex>-<sequence>".
std::string NewJobId();

}  // namespace fanout::coordinator
