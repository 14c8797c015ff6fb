// The ledger's /metrics (ledger --http): transfers applied and refused, and
// its group commits (how long each took, how many changes each made
// durable). Every method may be called from any thread: the counters are
// prometheus-cpp's lock-free ones (an atomic add per transfer, no lock, no
// allocation); a histogram takes a lock once per group commit, next to the
// commit's fsync.
//
//   LedgerMetrics metrics;
//   metrics.Transfer(reply);                      // a handler thread
//   metrics.Committed(seconds, replies_released); // the committer
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>

#include "common/codec.h"

namespace fanout::ledger {

class LedgerMetrics {
 public:
  LedgerMetrics();

  // A transfer request answered: applied now, applied before (a re-sent
  // request: nothing changed), or refused (overdraft, unknown account, a
  // sealed book, ...).
  void Transfer(const pb::LedgerReply& reply);
  // A group commit: its time and the replies it released.
  void Committed(double seconds, size_t changes);
  // Replies waiting for their change to reach the disk.
  void Waiting(size_t replies) { waiting_.Set(static_cast<double>(replies)); }

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter& applied_;
  prometheus::Counter& again_;
  prometheus::Counter& refused_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Histogram& commit_size_;
  prometheus::Gauge& waiting_;
};

}  // namespace fanout::ledger
