#include "worker/metrics.h"

#include "jobs/registry.h"

namespace fanout::worker {
namespace {

prometheus::Gauge& Gauge(prometheus::Registry& registry, const std::string& name,
                         const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

WorkerMetrics::WorkerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      tasks_(*registry_, "fanout_worker_", "on this worker", jobs::Kinds().NameList()),
      connects_(prometheus::BuildCounter()
                    .Name("fanout_worker_connects_total")
                    .Help("Connections made to the coordinator (1, plus one per reconnect)")
                    .Register(*registry_)
                    .Add({})),
      running_(Gauge(*registry_, "fanout_worker_tasks_running", "Tasks running on this worker")),
      unsent_(Gauge(*registry_, "fanout_worker_results_unsent",
                    "Results waiting to reach the coordinator")),
      connected_(Gauge(*registry_, "fanout_worker_connected",
                       "1 while the coordinator answers within its liveness window")),
      draining_(Gauge(*registry_, "fanout_worker_draining",
                      "1 once a signal asked this worker to finish its tasks and leave")) {}

void WorkerMetrics::Publish(TimePoint now, const Now& state) {
  next_ = now + kPublishEvery;
  tasks_.Update(counts_.tasks);
  connects_.Increment(static_cast<double>(counts_.connects - last_connects_));
  last_connects_ = counts_.connects;
  running_.Set(static_cast<double>(state.running));
  unsent_.Set(static_cast<double>(state.unsent));
  connected_.Set(state.connected ? 1 : 0);
  draining_.Set(state.draining ? 1 : 0);
}

}  // namespace fanout::worker
