// The bank job: transfers between the accounts of a fresh book on the
// ledger (transfer.h), in a mode that shows why the lock matters: unsafe
// (read, gap, write: loses money as soon as two overlap), locked (the same
// under the ledger's lease lock) or atomic (one request under its mutex).
//
// The coordinator opens the job's book before its first task (bank_1 ...
// bank_N at the initial balance) and reads it back after its last; the
// summary then carries the balances and their sum against the expected one.
#pragma once

#include "jobs/kind.h"

namespace fanout::jobs {

namespace bank {
inline constexpr uint32_t kMaxAccounts = 10'000;
inline constexpr int64_t kMaxAmount = 1'000'000'000'000;
inline constexpr uint32_t kMaxVerifyMs = 60'000;
inline constexpr uint32_t kMaxGapUs = 1'000'000;

// The transfer task `index` of a bank job makes: a function of (seed,
// index), so a re-run task moves the same money.
struct PlannedTransfer {
  uint32_t from;  // account numbers, 1-based, never equal
  uint32_t to;
  int64_t amount;
};
PlannedTransfer PlanTransfer(const pb::BankJob& bank, uint32_t index);

// "unsafe", "locked", "atomic"; ParseMode is its inverse.
std::string_view ModeName(pb::TransferMode mode);
Result<pb::TransferMode> ParseMode(std::string_view name);
}  // namespace bank

class BankKind final : public JobKind {
 public:
  std::string_view name() const override { return "bank"; }
  pb::JobSpec::KindCase spec_case() const override { return pb::JobSpec::kBank; }
  pb::Task::PayloadCase payload_case() const override { return pb::Task::kTransfer; }
  std::string_view summary() const override {
    return "transfers between accounts on the ledger, with or without a lock";
  }
  std::unique_ptr<SubmitFlags> AddSubmitFlags(CLI::App& cmd) const override;
  Status Validate(const pb::JobSpec& spec) const override;
  void FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv& env,
                pb::Task* task) const override;
  bool needs_ledger() const override { return true; }
  pb::LedgerRequest OpenRequest(const pb::JobSpec& spec) const override;
  pb::LedgerRequest CloseRequest(const pb::JobSpec& spec) const override;
  void Closed(const pb::JobSpec& spec, const pb::LedgerReply& reply,
              pb::JobDone& done) const override;
  Result<std::unique_ptr<Runner>> NewRunner(const WorkerEnv& env) const override;
  std::string StartLine(const pb::JobSpec& spec, uint32_t index) const override;
  std::string DoneLine(const pb::JobSpec& spec, uint32_t index,
                       const pb::Result& result) const override;
  nlohmann::json JsonValue(const pb::JobSpec& spec, const pb::Result& result) const override;
  std::optional<Verdict> Verify(const pb::JobSpec& spec,
                                const std::vector<const pb::Result*>& results,
                                const pb::JobDone& done) const override;
};

}  // namespace fanout::jobs
