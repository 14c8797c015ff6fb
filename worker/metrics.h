// A worker's /metrics (worker --http): what it ran, how long each task took,
// what runs now and its link to the coordinator.
//
// The I/O thread counts into Counts (plain: no lock, no allocation per
// task) and calls Publish every kPublishEvery; the HTTP threads serve the
// registry.
//
//   WorkerMetrics metrics;
//   metrics.counts().tasks.Count(kind, model, ok, seconds);
//   if (metrics.Due(now)) metrics.Publish(now, {.running = 3, .connected = true});
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>

#include "common/clock.h"
#include "http/metrics.h"

namespace fanout::worker {

class WorkerMetrics {
 public:
  // How stale /metrics may be.
  static constexpr Duration kPublishEvery = milliseconds(200);

  struct Counts {
    http::TaskCounts tasks;
    uint64_t connects = 0;  // connections to the coordinator made (the first included)
  };
  struct Now {
    size_t running = 0;      // tasks running here
    size_t unsent = 0;       // results waiting for the coordinator
    bool connected = false;  // the coordinator answered within its liveness window
    bool draining = false;
  };

  WorkerMetrics();

  Counts& counts() { return counts_; }
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  bool Due(TimePoint now) const { return now >= next_; }
  TimePoint next() const { return next_; }
  void Publish(TimePoint now, const Now& state);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  http::TaskMetrics tasks_;
  prometheus::Counter& connects_;
  prometheus::Gauge& running_;
  prometheus::Gauge& unsent_;
  prometheus::Gauge& connected_;
  prometheus::Gauge& draining_;
  Counts counts_;
  uint64_t last_connects_ = 0;
  TimePoint next_{};
};

}  // namespace fanout::worker
