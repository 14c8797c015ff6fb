// The exec job: a distributed xargs. One task per item; each runs the
// user's command (command.h builds its argv: "{}" is the item, "{#}" the
// task number, the item appended when there is no "{}"), and its value is
// the command's standard output without the trailing newline. Exit status 0
// is success; anything else is a failed task whose error gives the status
// and the last lines of standard error.
//
// Workers run commands only when started with --allow-exec (and, with
// --exec-allow, only those programs); others do not say "exec" in their
// Hello and are never sent such tasks. Every command runs in a process
// group of its own that dies with its task, and with its worker (reaper.h).
// Commands get FANOUT_JOB_ID, FANOUT_TASK_INDEX and FANOUT_ATTEMPT in their
// environment, so one with side effects can make them idempotent.
#pragma once

#include "jobs/kind.h"

namespace fanout::jobs {

class ExecKind final : public JobKind {
 public:
  std::string_view name() const override { return "exec"; }
  pb::JobSpec::KindCase spec_case() const override { return pb::JobSpec::kExec; }
  pb::Task::PayloadCase payload_case() const override { return pb::Task::kExec; }
  std::string_view summary() const override {
    return "run a command once per item (a distributed xargs)";
  }
  std::unique_ptr<SubmitFlags> AddSubmitFlags(CLI::App& cmd) const override;
  Status Validate(const pb::JobSpec& spec) const override;
  void FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv& env,
                pb::Task* task) const override;
  std::optional<Duration> TaskDeadline(const pb::JobSpec& spec) const override;
  std::string_view WorkerHint() const override { return "start one with --allow-exec"; }
  Result<std::unique_ptr<Runner>> NewRunner(const WorkerEnv& env) const override;
  std::string StartLine(const pb::JobSpec& spec, uint32_t index) const override;
  std::string DoneLine(const pb::JobSpec& spec, uint32_t index,
                       const pb::Result& result) const override;
  void AddJsonFields(const pb::Result& result, nlohmann::json& row) const override;
};

}  // namespace fanout::jobs
