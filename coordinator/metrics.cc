#include "coordinator/metrics.h"

#include <fmt/format.h>

#include "client/report.h"
#include "common/codec.h"
#include "jobs/registry.h"

namespace fanout::coordinator {
namespace {

using http::Bounds;
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

std::string KindLabel(size_t index) {
  const auto& all = jobs::Kinds().all();
  return index < all.size() ? std::string(all[index]->name()) : "other";
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      tasks_(*registry_, "fanout_", "on the workers", jobs::Kinds().NameList()),
      queue_seconds_(BuildHistogram()
                         .Name("fanout_task_queue_seconds")
                         .Help("How long tasks waited to be dispatched (from acceptance, or from "
                               "going back to the queue)")
                         .Register(*registry_)
                         .Add({}, Bounds(Telemetry::kQueueBounds))),
      tasks_queued_(BuildGauge()
                        .Name("fanout_tasks_queued")
                        .Help("Tasks waiting for a worker")
                        .Register(*registry_)
                        .Add({})),
      tasks_running_(BuildGauge()
                         .Name("fanout_tasks_running")
                         .Help("Tasks dispatched and not yet ended")
                         .Register(*registry_)
                         .Add({})),
      workers_(BuildGauge()
                   .Name("fanout_workers")
                   .Help("Connected workers, by state (idle, working, busy, draining)")
                   .Register(*registry_)),
      jobs_(BuildCounter()
                .Name("fanout_jobs_total")
                .Help("Jobs ended, by kind and outcome (done, failed, cancelled)")
                .Register(*registry_)),
      jobs_running_(BuildGauge()
                        .Name("fanout_jobs_running")
                        .Help("Jobs accepted and not yet ended")
                        .Register(*registry_)
                        .Add({})),
      retries_(BuildCounter()
                   .Name("fanout_task_retries_total")
                   .Help("Tasks run again, by reason (worker_lost, deadline)")
                   .Register(*registry_)),
      workers_lost_(
          BuildCounter()
              .Name("fanout_workers_lost_total")
              .Help("Workers that went silent (not drained) and whose tasks ran elsewhere")
              .Register(*registry_)
              .Add({})),
      commit_seconds_(BuildHistogram()
                          .Name("fanout_journal_commit_seconds")
                          .Help("How long each journal commit took")
                          .Register(*registry_)
                          .Add({}, prometheus::Histogram::BucketBoundaries{
                                       0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1})) {
  // Every series exists from the start (at 0), so rates work from the
  // first scrape.
  for (const std::string state : {"idle", "working", "busy", "draining"}) {
    workers_.Add({{"state", state}});
  }
  for (const std::string reason : {"worker_lost", "deadline"}) retries_.Add({{"reason", reason}});
}

void Metrics::Update(const Telemetry& t, const SchedulerStats& stats, const pb::StatusReply& status,
                     const std::vector<double>& commits) {
  static constexpr std::array<std::string_view, 3> kJobOutcomes = {"done", "failed", "cancelled"};
  static constexpr std::array<std::string_view, 2> kRetries = {"worker_lost", "deadline"};
  tasks_.Update(t.tasks);
  const size_t kinds = std::min(jobs::Kinds().all().size(), Telemetry::kKinds);
  for (size_t k = 0; k < kinds; ++k) {
    for (size_t o = 0; o < Telemetry::kJobOutcomes; ++o) {
      const uint64_t gained = t.jobs[k][o] - last_.jobs[k][o];
      if (gained == 0) continue;
      jobs_.Add({{"kind", KindLabel(k)}, {"outcome", std::string(kJobOutcomes[o])}})
          .Increment(static_cast<double>(gained));
    }
  }
  http::AddGained(t.queue_seconds, last_.queue_seconds, queue_seconds_);
  for (size_t r = 0; r < Telemetry::kRetries; ++r) {
    const uint64_t gained = t.retries[r] - last_.retries[r];
    if (gained > 0) {
      retries_.Add({{"reason", std::string(kRetries[r])}}).Increment(static_cast<double>(gained));
    }
  }
  workers_lost_.Increment(static_cast<double>(stats.workers_lost - last_lost_));
  last_lost_ = stats.workers_lost;
  last_ = t;

  std::map<std::string, double> states = {
      {"idle", 0}, {"working", 0}, {"busy", 0}, {"draining", 0}};
  uint64_t running = 0;
  for (const auto& w : status.workers()) {
    running += w.inflight();
    ++states[client::WorkerState(w)];
  }
  for (const auto& [state, n] : states) workers_.Add({{"state", state}}).Set(n);
  tasks_queued_.Set(static_cast<double>(status.tasks_queued()));
  tasks_running_.Set(static_cast<double>(running));
  jobs_running_.Set(status.jobs());
  for (double seconds : commits) commit_seconds_.Observe(seconds);
}

std::string Metrics::Text() const { return http::Exposition(*registry_); }

}  // namespace fanout::coordinator
