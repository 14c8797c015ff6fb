#include "jobs/bank/bank.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/text.h"
#include "jobs/bank/ledger_client.h"
#include "jobs/bank/transfer.h"
#include "jobs/flags.h"

namespace fanout::jobs {
namespace {

class BankFlags final : public SubmitFlags {
 public:
  explicit BankFlags(CLI::App& cmd) {
    AddCountFlag(cmd, count_);
    cmd.add_option("--accounts", accounts_, "accounts bank_1 ... bank_N")
        ->check(CLI::Range(uint32_t{2}, bank::kMaxAccounts))
        ->capture_default_str();
    cmd.add_option("--initial", initial_, "each account's opening balance")
        ->check(CLI::Range(int64_t{0}, bank::kMaxAmount))
        ->capture_default_str();
    cmd.add_option("--amount-max", amount_max_, "transfers move 1 ... this much")
        ->check(CLI::Range(int64_t{1}, bank::kMaxAmount))
        ->capture_default_str();
    cmd.add_option("--seed", seed_, "which transfers (same seed, same transfers)")
        ->capture_default_str();
    cmd.add_option("--mode", mode_, "unsafe (loses money), locked or atomic")
        ->check(CLI::IsMember({"unsafe", "locked", "atomic"}))
        ->capture_default_str();
    cmd.add_option("--verify-ms", verify_ms_, "simulated user check before each transfer")
        ->check(CLI::Range(uint32_t{0}, bank::kMaxVerifyMs))
        ->capture_default_str();
    cmd.add_option("--gap-us", gap_us_, "pause between reading and writing a balance")
        ->check(CLI::Range(uint32_t{0}, bank::kMaxGapUs))
        ->capture_default_str();
  }

  Status Fill(pb::JobSpec& spec) const override {
    spec.set_count(count_);
    pb::BankJob* b = spec.mutable_bank();
    b->set_accounts(accounts_);
    b->set_initial(initial_);
    b->set_amount_max(amount_max_);
    b->set_seed(seed_);
    Result<pb::TransferMode> mode = bank::ParseMode(mode_);
    if (!mode) return mode.error();
    b->set_mode(*mode);
    b->set_verify_ms(verify_ms_);
    b->set_gap_us(gap_us_);
    return {};
  }

 private:
  uint32_t count_ = 20;
  uint32_t accounts_ = 5;
  int64_t initial_ = 1000;
  int64_t amount_max_ = 100;
  uint64_t seed_ = 1;
  std::string mode_ = "atomic";
  uint32_t verify_ms_ = 100;
  uint32_t gap_us_ = 100;
};

class BankRunner final : public Runner {
 public:
  explicit BankRunner(std::shared_ptr<const Keys> keys) : keys_(std::move(keys)) {}
  void RunBlocking(const pb::Task& task, pb::Result& result, std::stop_token stop) override {
    bank::TransferBlocking(task, result, stop, keys_.get());
  }
  co::Task<void> RunAsync(const pb::Task& task, pb::Result& result, AsyncEnv& env,
                          std::stop_token stop) override {
    co_await bank::TransferAsync(task, result, env.loop(), env.Get<bank::AsyncLedgers>(), stop,
                                 keys_.get());
  }

 private:
  std::shared_ptr<const Keys> keys_;  // --keys: CURVE to the ledger
};

std::string TransferText(const pb::JobSpec& spec, uint32_t index) {
  const bank::PlannedTransfer t = bank::PlanTransfer(spec.bank(), index);
  return fmt::format("{} from bank_{} to bank_{}", t.amount, t.from, t.to);
}

}  // namespace

bank::PlannedTransfer bank::PlanTransfer(const pb::BankJob& bank, uint32_t index) {
  const uint64_t r = Mix64(bank.seed() ^ Mix64(index));
  const uint32_t n = std::max<uint32_t>(2, bank.accounts());
  const uint32_t from = static_cast<uint32_t>(r % n);
  const uint32_t to = (from + 1 + static_cast<uint32_t>(Mix64(r) % (n - 1))) % n;
  const int64_t amount =
      1 + static_cast<int64_t>(Mix64(r + 1) %
                               static_cast<uint64_t>(std::max<int64_t>(1, bank.amount_max())));
  return {from + 1, to + 1, amount};
}

std::string_view bank::ModeName(pb::TransferMode mode) {
  switch (mode) {
    case pb::UNSAFE:
      return "unsafe";
    case pb::LOCKED:
      return "locked";
    case pb::ATOMIC:
      return "atomic";
    default:
      return "unknown";
  }
}

Result<pb::TransferMode> bank::ParseMode(std::string_view name) {
  if (name == "unsafe") return pb::UNSAFE;
  if (name == "locked") return pb::LOCKED;
  if (name == "atomic") return pb::ATOMIC;
  return InvalidArgument("unknown mode '{}' (expected unsafe, locked or atomic)", name);
}

std::unique_ptr<SubmitFlags> BankKind::AddSubmitFlags(CLI::App& cmd) const {
  return std::make_unique<BankFlags>(cmd);
}

Status BankKind::Validate(const pb::JobSpec& spec) const {
  const pb::BankJob& b = spec.bank();
  if (b.accounts() < 2 || b.accounts() > bank::kMaxAccounts) {
    return InvalidArgument("accounts must be between 2 and {} (got {})", bank::kMaxAccounts,
                           b.accounts());
  }
  if (b.initial() < 0 || b.initial() > bank::kMaxAmount) {
    return InvalidArgument("initial balance must be between 0 and {} (got {})", bank::kMaxAmount,
                           b.initial());
  }
  if (b.amount_max() < 1 || b.amount_max() > bank::kMaxAmount) {
    return InvalidArgument("amount max must be between 1 and {} (got {})", bank::kMaxAmount,
                           b.amount_max());
  }
  if (b.mode() != pb::UNSAFE && b.mode() != pb::LOCKED && b.mode() != pb::ATOMIC) {
    return InvalidArgument("mode must be unsafe, locked or atomic");
  }
  if (b.verify_ms() > bank::kMaxVerifyMs) {
    return InvalidArgument("verify must be at most {} ms", bank::kMaxVerifyMs);
  }
  if (b.gap_us() > bank::kMaxGapUs) {
    return InvalidArgument("gap must be at most {} us", bank::kMaxGapUs);
  }
  return {};
}

void BankKind::FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv& env,
                        pb::Task* task) const {
  const pb::BankJob& b = spec.bank();
  const bank::PlannedTransfer plan = bank::PlanTransfer(b, index);
  pb::Transfer* t = task->mutable_transfer();
  t->set_ledger(env.ledger);
  t->set_book(task->job_id());
  t->set_transfer_id(fmt::format("{}/{}", task->job_id(), index));
  t->set_from(fmt::format("bank_{}", plan.from));
  t->set_to(fmt::format("bank_{}", plan.to));
  t->set_amount(plan.amount);
  t->set_mode(b.mode());
  t->set_verify_ms(b.verify_ms());
  t->set_gap_us(b.gap_us());
}

// bank_1..bank_N at the initial balance, unless the book exists: a re-sent
// request, or a resumed job, must not wipe it.
pb::LedgerRequest BankKind::OpenRequest(const pb::JobSpec& spec) const {
  pb::LedgerRequest request;
  request.mutable_reset()->set_accounts(spec.bank().accounts());
  request.mutable_reset()->set_initial(spec.bank().initial());
  request.mutable_reset()->set_keep_existing(true);
  return request;
}

// The final read seals the book: a transfer still in flight when the job
// ends (cancelled, or a stuck attempt) is refused rather than moving money
// after the balances were reported.
pb::LedgerRequest BankKind::CloseRequest(const pb::JobSpec&) const {
  pb::LedgerRequest request;
  request.mutable_snapshot()->set_close(true);
  return request;
}

void BankKind::Closed(const pb::JobSpec& spec, const pb::LedgerReply& reply,
                      pb::JobDone& done) const {
  pb::LedgerSnapshot* snapshot = done.mutable_ledger();
  snapshot->set_expected_sum(static_cast<int64_t>(spec.bank().accounts()) * spec.bank().initial());
  if (!reply.ok()) {
    snapshot->set_error(reply.error());
    return;
  }
  int64_t sum = 0;
  for (const auto& [account, balance] : reply.balances()) sum += balance;
  snapshot->mutable_balances()->insert(reply.balances().begin(), reply.balances().end());
  snapshot->set_sum(sum);
}

Result<std::unique_ptr<Runner>> BankKind::NewRunner(const WorkerEnv& env) const {
  return std::unique_ptr<Runner>(std::make_unique<BankRunner>(env.keys));
}

std::string BankKind::StartLine(const pb::JobSpec& spec, uint32_t index) const {
  return fmt::format("Transferring {}...", TransferText(spec, index));
}

std::string BankKind::DoneLine(const pb::JobSpec& spec, uint32_t index, const pb::Result& r) const {
  if (r.ok()) return fmt::format("Transferred {}.", TransferText(spec, index));
  return fmt::format("Transfer of {} failed: {}", TransferText(spec, index), r.error());
}

// {"from", "to", "amount"}, sent as JSON text.
nlohmann::json BankKind::JsonValue(const pb::JobSpec&, const pb::Result& r) const {
  nlohmann::json j = nlohmann::json::parse(r.text(), nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : PlainValue(r);
}

// Right when no money was created or lost; the unsafe mode is expected to
// lose some (that is its lesson), so its loss is a warning, not a failure.
std::optional<Verdict> BankKind::Verify(const pb::JobSpec& spec,
                                        const std::vector<const pb::Result*>&,
                                        const pb::JobDone& done) const {
  const pb::LedgerSnapshot& l = done.ledger();
  if (!done.has_ledger()) return Verdict{false, "no balances from the ledger"};
  if (!l.error().empty()) return Verdict{false, "ledger: " + l.error()};
  const int64_t lost = l.expected_sum() - l.sum();
  if (lost == 0) return Verdict{done.failed() == 0, fmt::format("sum {} right", l.sum())};
  const bool unsafe = spec.bank().mode() == pb::UNSAFE;
  return Verdict{
      .right = unsafe,
      .text = fmt::format("sum {}: {} {}", l.sum(), std::abs(lost), lost > 0 ? "lost" : "created"),
      .warning = unsafe};
}

}  // namespace fanout::jobs
