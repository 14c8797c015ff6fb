// What the scheduler counts for /metrics. It counts on its own thread into
// plain arrays (no lock, no allocation per task); the socket loop hands
// them to the metrics registry a few times a second (coordinator/metrics.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/clock.h"
#include "http/metrics.h"

namespace fanout::coordinator {

struct Telemetry {
  // Job kinds are told apart by their index in jobs::Kinds().all().
  static constexpr size_t kKinds = http::TaskCounts::kKinds;
  static constexpr size_t kModels = http::TaskCounts::kModels;
  enum JobOutcome : uint8_t { kJobDone, kJobFailed, kJobCancelled, kJobOutcomes };
  enum Retry : uint8_t { kWorkerLost, kDeadline, kRetries };

  // From queued (accepted, or back after a failed attempt) to dispatched.
  static constexpr std::array<double, 10> kQueueBounds = {0.0001, 0.001, 0.005, 0.01, 0.05,
                                                          0.1,    0.5,   1,     5,    30};

  http::TaskCounts tasks;
  http::Histogram<kQueueBounds.size()> queue_seconds{};
  std::array<std::array<uint64_t, kJobOutcomes>, kKinds> jobs{};
  std::array<uint64_t, kRetries> retries{};
};

}  // namespace fanout::coordinator
