// Prometheus for every fanout process that serves --http: the coordinator,
// workers and the ledger.
//
// A process loop counts into plain structs on its own thread (Histogram
// below, arrays of uint64_t: no lock, no allocation per task) and, a few
// times a second, moves what they gained into a prometheus-cpp registry;
// HTTP threads serialize that registry with the process's own metrics.
//
//   http::Histogram<3> seconds;                      // the loop's, plain
//   seconds.Observe(kBounds, 0.02);
//   ...every 200 ms: http::AddGained(seconds, last, registry_histogram); last = seconds;
//   auto server = http::ServeMetrics(address, keys, insecure, registry);   // GET /metrics
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/security.h"
#include "http/server.h"

namespace fanout::http {

// The exposition format's content type (text, version 0.0.4).
inline constexpr std::string_view kExpositionType = "text/plain; version=0.0.4; charset=utf-8";

// A histogram with fixed bounds in seconds, kept by one thread without a
// lock; Prometheus' cumulative buckets are made when it is moved.
template <size_t N>
struct Histogram {
  std::array<uint64_t, N + 1> counts{};  // per bucket, the last one past every bound
  double sum = 0;

  void Observe(const std::array<double, N>& bounds, double seconds) {
    size_t i = 0;
    while (i < N && seconds > bounds[i]) ++i;
    ++counts[i];
    sum += seconds;
  }
};

template <size_t N>
prometheus::Histogram::BucketBoundaries Bounds(const std::array<double, N>& bounds) {
  return {bounds.begin(), bounds.end()};
}

// Moves what `now` gained since `last` into `into` (one lock, whatever the count).
template <size_t N>
void AddGained(const Histogram<N>& now, const Histogram<N>& last, prometheus::Histogram& into) {
  std::vector<double> increments(N + 1);
  bool any = false;
  for (size_t i = 0; i <= N; ++i) {
    increments[i] = static_cast<double>(now.counts[i] - last.counts[i]);
    any |= increments[i] > 0;
  }
  if (any) into.ObserveMultiple(increments, now.sum - last.sum);
}

// Tasks ended, by job kind (an index the caller keeps, below kKinds),
// model (pb::Model: sync, threads, async) and outcome, and how long they
// ran: what the coordinator and every worker count. One thread's, plain.
struct TaskCounts {
  static constexpr size_t kKinds = 8;
  static constexpr size_t kModels = 3;
  enum Outcome : uint8_t { kOk, kFailed, kOutcomes };
  // A task's run on its worker: 1 ms to 10 min.
  static constexpr std::array<double, 12> kDurationBounds = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25,
                                                             0.5,   1,     2.5,  10,   60,  600};

  std::array<std::array<std::array<uint64_t, kOutcomes>, kModels>, kKinds> tasks{};
  std::array<Histogram<kDurationBounds.size()>, kKinds> seconds{};

  // `seconds` < 0: the task never ran (it failed before any worker did).
  void Count(size_t kind, size_t model, bool ok, double seconds_run) {
    if (kind >= kKinds || model >= kModels) return;
    ++tasks[kind][model][ok ? kOk : kFailed];
    if (seconds_run >= 0) seconds[kind].Observe(kDurationBounds, seconds_run);
  }
};

// TaskCounts in a registry: `<prefix>tasks_total{kind,model,outcome}` and
// `<prefix>task_duration_seconds{kind}`, every series there from the start.
class TaskMetrics {
 public:
  // `kinds`: the label of each kind index.
  TaskMetrics(prometheus::Registry& registry, const std::string& prefix, std::string_view who,
              std::vector<std::string> kinds);
  // What `now` gained since the last call (a lock per series that moved).
  void Update(const TaskCounts& now);

 private:
  std::vector<std::string> kinds_;
  prometheus::Family<prometheus::Counter>& tasks_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  TaskCounts last_{};
};

// The registry's exposition followed by this process's own metrics
// (process_cpu_seconds_total, process_resident_memory_bytes,
// process_start_time_seconds). Any thread.
std::string Exposition(const prometheus::Registry& registry);

// The rule every --http follows, as the ZeroMQ endpoints do: listening
// beyond loopback needs keys (and then every request must carry the keys'
// http.token) or `insecure`. A refusal is kInvalidArgument, naming --http.
Result<ServerOptions> Secured(const std::string& address, const Keys* keys, bool insecure);

// GET /metrics (the registry) and GET /healthz on `address`, under Secured's
// rule: what a worker's or the ledger's --http serves.
Result<std::unique_ptr<Server>> ServeMetrics(const std::string& address, const Keys* keys,
                                             bool insecure,
                                             std::shared_ptr<prometheus::Registry> registry);

// ServeMetrics for a process's --http, logged: null when `address` is empty
// or cannot be listened on (a port taken: a warning, and `who` runs on
// without /metrics); an error only for what the rule refuses (exit 2).
Result<std::unique_ptr<Server>> ServeMetricsIfAsked(const std::string& address, const Keys* keys,
                                                    bool insecure,
                                                    std::shared_ptr<prometheus::Registry> registry,
                                                    std::string_view who);

}  // namespace fanout::http
