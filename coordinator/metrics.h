// The coordinator's /metrics: a prometheus-cpp registry the socket loop
// brings up to date a few times a second from what the scheduler counted
// (Telemetry) and reports (StatusReply), and the text exposition format
// (0.0.4) it serves. Names follow Prometheus' conventions: `_total`
// counters, base units, `_seconds` histograms.
//
//   Metrics metrics;
//   metrics.Update(scheduler.telemetry(), scheduler.stats(), status, journal_seconds);
//   std::string text = metrics.Text();   // any thread
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"
#include "coordinator/telemetry.h"
#include "http/metrics.h"
#include "proto/fanout.pb.h"

namespace fanout::coordinator {

class Metrics {
 public:
  Metrics();

  // On the loop's thread: what changed since the last call goes into the
  // registry (a lock per family, not per task). `commit` is the journal
  // commits' time since the last call (seconds each).
  void Update(const Telemetry& telemetry, const SchedulerStats& stats,
              const pb::StatusReply& status, const std::vector<double>& commits);

  // Any thread: the exposition, with the process's own metrics.
  std::string Text() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  http::TaskMetrics tasks_;
  prometheus::Histogram& queue_seconds_;
  prometheus::Gauge& tasks_queued_;
  prometheus::Gauge& tasks_running_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Family<prometheus::Counter>& jobs_;
  prometheus::Gauge& jobs_running_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Counter& workers_lost_;
  prometheus::Histogram& commit_seconds_;
  Telemetry last_{};  // what the registry already has
  uint64_t last_lost_ = 0;
};

}  // namespace fanout::coordinator
