// What the scheduler counts for /metrics. It counts on its own thread into
// plain arrays (no lock, no allocation per task); the socket loop hands
// them to the metrics registry a few times a second (coordinator/metrics.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/clock.h"

namespace fanout::coordinator {

// A histogram with fixed bounds in seconds, Prometheus' cumulative buckets
// computed when read.
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

struct Telemetry {
  // Job kinds are told apart by their index in jobs::Kinds().all().
  static constexpr size_t kKinds = 8;
  static constexpr size_t kModels = 3;  // pb::Model: SYNC, THREADS, ASYNC
  enum Outcome : uint8_t { kOk, kFailed, kOutcomes };
  enum JobOutcome : uint8_t { kJobDone, kJobFailed, kJobCancelled, kJobOutcomes };
  enum Retry : uint8_t { kWorkerLost, kDeadline, kRetries };

  // A task's run on its worker: 1 ms to 10 min.
  static constexpr std::array<double, 12> kDurationBounds = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25,
                                                             0.5,   1,     2.5,  10,   60,  600};
  // From queued (accepted, or back after a failed attempt) to dispatched.
  static constexpr std::array<double, 10> kQueueBounds = {0.0001, 0.001, 0.005, 0.01, 0.05,
                                                          0.1,    0.5,   1,     5,    30};

  std::array<std::array<std::array<uint64_t, kOutcomes>, kModels>, kKinds> tasks{};
  std::array<Histogram<kDurationBounds.size()>, kKinds> task_seconds{};
  Histogram<kQueueBounds.size()> queue_seconds{};
  std::array<std::array<uint64_t, kJobOutcomes>, kKinds> jobs{};
  std::array<uint64_t, kRetries> retries{};
};

}  // namespace fanout::coordinator
