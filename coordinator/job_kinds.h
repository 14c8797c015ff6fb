// What each kind of job means to the coordinator: which specs are acceptable,
// and how task `index` of a job is built. Tasks are made on demand from the
// spec, so a job of a million tasks costs the coordinator a few bytes a task.
#pragma once

#include <cstdint>
#include <string>

#include "common/codec.h"
#include "common/result.h"

namespace fanout::coordinator {

inline constexpr uint32_t kMaxTasksPerJob = 10'000'000;
inline constexpr uint32_t kMaxConcurrency = 10'000;
inline constexpr uint32_t kMaxAttempts = 100;
inline constexpr uint64_t kMaxMathIterations = 10'000'000'000;
inline constexpr uint32_t kMaxUrlBytes = 8192;
inline constexpr uint32_t kMaxRetries = 20;
inline constexpr uint32_t kMaxTimeoutMs = 600'000;

// The URL of page `number` from a template: every "{n}" replaced.
std::string ExpandTemplate(const std::string& url_template, int64_t number);

// OK, or a one-line reason the job cannot run ("count must be ...").
Status ValidateSpec(const pb::JobSpec& spec);

inline constexpr uint32_t kMaxBankAccounts = 10'000;
inline constexpr int64_t kMaxBankAmount = 1'000'000'000'000;

// The transfer task `index` of a bank job makes: a function of (seed,
// index), so a re-run task moves the same money.
struct PlannedTransfer {
  uint32_t from;  // account numbers, 1-based, never equal
  uint32_t to;
  int64_t amount;
};
PlannedTransfer PlanTransfer(const pb::BankJob& bank, uint32_t index);

// Sets the payload of task `index` (1-based) of a job with this spec;
// `task` already has its job id. `ledger` is the coordinator's --ledger.
void FillPayload(const pb::JobSpec& spec, uint32_t index, const std::string& ledger,
                 pb::Task* task);

}  // namespace fanout::coordinator
