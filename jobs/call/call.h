// The call job: a named function, called once per item on the workers that
// serve it (their Hello lists the name in `functions`), its value what the
// function returned (text; bytes that are not UTF-8 travel as data and are
// base64 in --json), an error or an exception a failed task with its
// message. Functions live in the worker's process: registered from C++
// (jobs/call/functions.h) or from Python (python/fanout).
#pragma once

#include "jobs/kind.h"

namespace fanout::jobs {

class CallKind final : public JobKind {
 public:
  std::string_view name() const override { return "call"; }
  pb::JobSpec::KindCase spec_case() const override { return pb::JobSpec::kCall; }
  pb::Task::PayloadCase payload_case() const override { return pb::Task::kCall; }
  std::string_view summary() const override {
    return "call a named function once per item, on the workers that serve it";
  }
  std::unique_ptr<SubmitFlags> AddSubmitFlags(CLI::App& cmd) const override;
  Status Validate(const pb::JobSpec& spec) const override;
  void FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv& env,
                pb::Task* task) const override;
  std::string_view RoutingName(const pb::JobSpec& spec) const override {
    return spec.call().name();
  }
  Result<std::unique_ptr<Runner>> NewRunner(const WorkerEnv& env) const override;
  std::string StartLine(const pb::JobSpec& spec, uint32_t index) const override;
  std::string DoneLine(const pb::JobSpec& spec, uint32_t index,
                       const pb::Result& result) const override;
};

}  // namespace fanout::jobs
