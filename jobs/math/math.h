// The math job: the article's CPU loop (loop.h) from a start number, one
// run per task. Task i computes from start + i - 1; its value is the number
// the loop ends at. CPU-bound: threads help (no GIL in C++), async does not.
#pragma once

#include "jobs/kind.h"

namespace fanout::jobs {

namespace math {
inline constexpr uint64_t kMaxIterations = 10'000'000'000;
}  // namespace math

class MathKind final : public JobKind {
 public:
  std::string_view name() const override { return "math"; }
  pb::JobSpec::KindCase spec_case() const override { return pb::JobSpec::kMath; }
  pb::Task::PayloadCase payload_case() const override { return pb::Task::kMath; }
  std::string_view summary() const override {
    return "the article's CPU loop from a start number, once per task";
  }
  std::unique_ptr<SubmitFlags> AddSubmitFlags(CLI::App& cmd) const override;
  Status Validate(const pb::JobSpec& spec) const override;
  void FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv& env,
                pb::Task* task) const override;
  Result<std::unique_ptr<Runner>> NewRunner(const WorkerEnv& env) const override;
  std::string StartLine(const pb::JobSpec& spec, uint32_t index) const override;
  std::string DoneLine(const pb::JobSpec& spec, uint32_t index,
                       const pb::Result& result) const override;
  std::optional<Verdict> Verify(const pb::JobSpec& spec,
                                const std::vector<const pb::Result*>& results,
                                const pb::JobDone& done) const override;
};

}  // namespace fanout::jobs
