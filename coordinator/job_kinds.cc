#include "coordinator/job_kinds.h"

#include <cmath>

namespace fanout::coordinator {
namespace {

Status ValidateMath(const pb::MathJob& math) {
  if (!std::isfinite(math.start())) return InvalidArgument("math start must be a finite number");
  if (math.iterations() > kMaxMathIterations) {
    return InvalidArgument("math iterations must be at most {}", kMaxMathIterations);
  }
  return {};
}

}  // namespace

Status ValidateSpec(const pb::JobSpec& spec) {
  if (spec.model() != pb::SYNC && spec.model() != pb::THREADS && spec.model() != pb::ASYNC) {
    return InvalidArgument("model must be sync, threads or async");
  }
  if (spec.count() == 0 || spec.count() > kMaxTasksPerJob) {
    return InvalidArgument("count must be between 1 and {} (got {})", kMaxTasksPerJob,
                           spec.count());
  }
  if (spec.concurrency() > kMaxConcurrency) {
    return InvalidArgument("concurrency must be at most {} (got {})", kMaxConcurrency,
                           spec.concurrency());
  }
  if (spec.max_attempts() > kMaxAttempts) {
    return InvalidArgument("max attempts must be at most {} (got {})", kMaxAttempts,
                           spec.max_attempts());
  }
  switch (spec.kind_case()) {
    case pb::JobSpec::kMath:
      return ValidateMath(spec.math());
    case pb::JobSpec::KIND_NOT_SET:
      break;
  }
  return InvalidArgument("unknown job kind (this coordinator runs math jobs)");
}

void FillPayload(const pb::JobSpec& spec, uint32_t index, pb::Task* task) {
  switch (spec.kind_case()) {
    case pb::JobSpec::kMath: {
      pb::Math* math = task->mutable_math();
      math->set_start(spec.math().start() + static_cast<double>(index - 1));
      math->set_iterations(spec.math().iterations());
      return;
    }
    case pb::JobSpec::KIND_NOT_SET:
      break;
  }
}

}  // namespace fanout::coordinator
