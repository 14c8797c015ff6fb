#include "jobs/math/math.h"

#include <fmt/format.h>

#include <cmath>

#include "common/text.h"
#include "jobs/flags.h"
#include "jobs/math/loop.h"

namespace fanout::jobs {
namespace {

class MathFlags final : public SubmitFlags {
 public:
  explicit MathFlags(CLI::App& cmd) {
    AddCountFlag(cmd, count_);
    cmd.add_option("--start", start_, "the starting number of task 1 (task i: start + i - 1)")
        ->capture_default_str();
    cmd.add_option("--iterations", iterations_, "loop iterations per task")
        ->check(CLI::Range(uint64_t{0}, math::kMaxIterations))
        ->capture_default_str();
  }
  Status Fill(pb::JobSpec& spec) const override {
    spec.set_count(count_);
    spec.mutable_math()->set_start(start_);
    spec.mutable_math()->set_iterations(iterations_);
    return {};
  }

 private:
  uint32_t count_ = 20;
  double start_ = 1;
  uint64_t iterations_ = 2'000'000;
};

class MathRunner final : public Runner {
 public:
  void RunBlocking(const pb::Task& task, pb::Result& result, std::stop_token stop) override {
    result.set_number(math::DoMath(task.math().start(), task.math().iterations(), stop));
    result.set_ok(!stop.stop_requested());
    if (stop.stop_requested()) result.set_error("stopped before the loop ended");
  }
  // Math never waits: it holds the loop for its whole run, as in asyncio.
  co::Task<void> RunAsync(const pb::Task& task, pb::Result& result, AsyncEnv&,
                          std::stop_token stop) override {
    RunBlocking(task, result, stop);
    co_return;
  }
};

// The article prints its start numbers as integers.
std::string Start(const pb::JobSpec& spec, uint32_t index) {
  const double x = spec.math().start() + static_cast<double>(index - 1);
  if (x == std::floor(x) && std::fabs(x) < 1e15) return fmt::format("{}", static_cast<int64_t>(x));
  return PythonFloat(x);
}

}  // namespace

std::unique_ptr<SubmitFlags> MathKind::AddSubmitFlags(CLI::App& cmd) const {
  return std::make_unique<MathFlags>(cmd);
}

Status MathKind::Validate(const pb::JobSpec& spec) const {
  if (!std::isfinite(spec.math().start())) {
    return InvalidArgument("math start must be a finite number");
  }
  if (spec.math().iterations() > math::kMaxIterations) {
    return InvalidArgument("math iterations must be at most {}", math::kMaxIterations);
  }
  return {};
}

void MathKind::FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv&,
                        pb::Task* task) const {
  pb::Math* math = task->mutable_math();
  math->set_start(spec.math().start() + static_cast<double>(index - 1));
  math->set_iterations(spec.math().iterations());
}

Result<std::unique_ptr<Runner>> MathKind::NewRunner(const WorkerEnv&) const {
  return std::unique_ptr<Runner>(std::make_unique<MathRunner>());
}

std::string MathKind::StartLine(const pb::JobSpec& spec, uint32_t index) const {
  return fmt::format("Doing math, starting_number={}...", Start(spec, index));
}

std::string MathKind::DoneLine(const pb::JobSpec& spec, uint32_t index, const pb::Result& r) const {
  if (r.ok()) return fmt::format("Done with math, starting_number={}.", Start(spec, index));
  return fmt::format("Math failed, starting_number={}: {}", Start(spec, index), r.error());
}

// The loop adds one per iteration and, for the article's numbers, loses
// nothing to rounding: each value is start + iterations. Other values may
// be right too (rounding), so they are left to a comparison.
std::optional<Verdict> MathKind::Verify(const pb::JobSpec& spec,
                                        const std::vector<const pb::Result*>& results,
                                        const pb::JobDone&) const {
  for (size_t i = 0; i < results.size(); ++i) {
    const double expected = spec.math().start() + static_cast<double>(i) +
                            static_cast<double>(spec.math().iterations());
    if (results[i] == nullptr || !results[i]->ok() || results[i]->number() != expected) {
      return std::nullopt;
    }
  }
  return Verdict{.right = true, .text = fmt::format("all {} values right", results.size())};
}

}  // namespace fanout::jobs
