// What each kind of job means to the coordinator: which specs are acceptable,
// and how task `index` of a job is built. Tasks are made on demand from the
// spec, so a job of a million tasks costs the coordinator a few bytes a task.
#pragma once

#include <cstdint>

#include "common/codec.h"
#include "common/result.h"

namespace fanout::coordinator {

inline constexpr uint32_t kMaxTasksPerJob = 10'000'000;
inline constexpr uint32_t kMaxConcurrency = 10'000;
inline constexpr uint32_t kMaxAttempts = 100;
inline constexpr uint64_t kMaxMathIterations = 10'000'000'000;

// OK, or a one-line reason the job cannot run ("count must be ...").
Status ValidateSpec(const pb::JobSpec& spec);

// Sets the payload of task `index` (1-based) of a job with this spec.
void FillPayload(const pb::JobSpec& spec, uint32_t index, pb::Task* task);

}  // namespace fanout::coordinator
