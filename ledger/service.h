// `fanout ledger`: the account service.
//
// One thread owns the ROUTER and the lease locks (lock requests wait there,
// FIFO, without holding a thread); a pool of handler threads runs every
// other request against the Store; a committer thread writes what changed in
// group commits and releases each reply that reports a change only once the
// change is on disk. Replies reach the ROUTER's thread over inproc.
//
//   ROUTER --inproc--> handlers --(durable at once)--------> main --> ROUTER
//                               `--(wait for commit)--> committer --^
#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "common/security.h"

namespace fanout::ledger {

struct LedgerOptions {
  // Loopback by default: listening elsewhere needs keys (or --insecure).
  std::string endpoint = "tcp://127.0.0.1:5557";
  // With keys (--keys), a CURVE server admitting the keys in authorized_keys.
  std::shared_ptr<const Keys> keys = nullptr;
  bool insecure = false;                // without keys, listen beyond loopback anyway
  std::string db = "fanout-ledger.db";  // ":memory:": nothing survives a restart
  int threads = 0;                      // handler threads; 0: one per core
  std::string ready_file;               // {"endpoint": ..., "pid": ...} once listening
  // HOST:PORT of its /metrics (empty: none); beyond loopback as `endpoint`.
  std::string http;
};

// Serves until `signal_fd` is readable. Returns the exit code.
int RunLedger(const LedgerOptions& options, int signal_fd);

}  // namespace fanout::ledger
