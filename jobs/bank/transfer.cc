#include "jobs/bank/transfer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "jobs/bank/ledger_client.h"
#include "jobs/kind.h"

namespace fanout::jobs::bank {
namespace {

constexpr uint32_t kLeaseMs = 10'000;

pb::LedgerRequest Request(const pb::Transfer& t) {
  pb::LedgerRequest r;
  r.set_book(t.book());
  return r;
}

pb::LedgerRequest Get(const pb::Transfer& t, const std::string& account) {
  pb::LedgerRequest r = Request(t);
  r.mutable_get()->set_account(account);
  return r;
}

pb::LedgerRequest Set(const pb::Transfer& t, const std::string& account, int64_t balance) {
  pb::LedgerRequest r = Request(t);
  r.mutable_set()->set_account(account);
  r.mutable_set()->set_balance(balance);
  return r;
}

pb::LedgerRequest Lock(const pb::Transfer& t, const std::string& owner) {
  pb::LedgerRequest r = Request(t);
  r.mutable_lock()->set_owner(owner);
  r.mutable_lock()->set_lease_ms(kLeaseMs);
  return r;
}

pb::LedgerRequest Unlock(const pb::Transfer& t, const std::string& owner) {
  pb::LedgerRequest r = Request(t);
  r.mutable_unlock()->set_owner(owner);
  return r;
}

pb::LedgerRequest Atomic(const pb::Transfer& t) {
  pb::LedgerRequest r = Request(t);
  pb::TransferFunds* f = r.mutable_transfer();
  f->set_transfer_id(t.transfer_id());
  f->set_from(t.from());
  f->set_to(t.to());
  f->set_amount(t.amount());
  return r;
}

// Who holds the lock: this attempt of this task.
std::string Owner(const pb::Task& task) {
  return fmt::format("{}#{}", task.transfer().transfer_id(), task.attempt());
}

void Succeed(const pb::Transfer& t, pb::Result& result) {
  result.set_ok(true);
  result.set_text(
      nlohmann::json{{"from", t.from()}, {"to", t.to()}, {"amount", t.amount()}}.dump());
}

void Fail(const Error& error, pb::Result& result) {
  result.set_ok(false);
  result.set_error(error.message);
}

std::string Overdraft(const pb::Transfer& t, int64_t balance) {
  return fmt::format("insufficient funds: {} has {}, transfer of {}", t.from(), balance,
                     t.amount());
}

}  // namespace

void TransferBlocking(const pb::Task& task, pb::Result& result, std::stop_token stop,
                      const Keys* keys) {
  const pb::Transfer& t = task.transfer();
  BlockingLedger& ledger = ThreadLedger(t.ledger(), keys);
  if (!SleepUnlessStopped(milliseconds(t.verify_ms()), stop)) {
    return Fail(Unavailable("stopped during the user check"), result);
  }
  const auto gap = std::chrono::microseconds(t.gap_us());

  if (t.mode() == pb::ATOMIC) {
    Result<pb::LedgerReply> r = ledger.Call(Atomic(t));
    if (!r) return Fail(r.error(), result);
    return Succeed(t, result);
  }
  const std::string owner = Owner(task);
  if (t.mode() == pb::LOCKED) {
    if (Result<pb::LedgerReply> r = ledger.Call(Lock(t, owner)); !r) return Fail(r.error(), result);
  }
  auto steps = [&]() -> Status {
    Result<pb::LedgerReply> from = ledger.Call(Get(t, t.from()));
    if (!from) return from.error();
    if (from->balance() < t.amount()) return InvalidArgument("{}", Overdraft(t, from->balance()));
    std::this_thread::sleep_for(gap);
    if (auto r = ledger.Call(Set(t, t.from(), from->balance() - t.amount())); !r) return r.error();
    Result<pb::LedgerReply> to = ledger.Call(Get(t, t.to()));
    if (!to) return to.error();
    std::this_thread::sleep_for(gap);
    if (auto r = ledger.Call(Set(t, t.to(), to->balance() + t.amount())); !r) return r.error();
    return {};
  };
  const Status done = steps();
  if (t.mode() == pb::LOCKED) {
    if (auto r = ledger.Call(Unlock(t, owner)); !r) {
      spdlog::warn("task {}/{}: {}", task.job_id(), task.index(), r.error().message);
    }
  }
  if (!done) return Fail(done.error(), result);
  Succeed(t, result);
}

co::Task<void> TransferAsync(const pb::Task& task, pb::Result& result, EventLoop& loop,
                             AsyncLedgers& ledgers, std::stop_token stop, const Keys* keys) {
  const pb::Transfer& t = task.transfer();
  AsyncLedger& ledger = ledgers.For(t.ledger(), keys);
  if (!co_await loop.Sleep(milliseconds(t.verify_ms()), stop)) {
    Fail(Unavailable("stopped during the user check"), result);
    co_return;
  }
  const auto gap = std::chrono::microseconds(t.gap_us());

  if (t.mode() == pb::ATOMIC) {
    Result<pb::LedgerReply> r = co_await ledger.Send(Atomic(t));
    if (!r) {
      Fail(r.error(), result);
    } else {
      Succeed(t, result);
    }
    co_return;
  }
  const std::string owner = Owner(task);
  if (t.mode() == pb::LOCKED) {
    // The loop serves other tasks while this one waits for the lock.
    Result<pb::LedgerReply> r = co_await ledger.Send(Lock(t, owner));
    if (!r) {
      Fail(r.error(), result);
      co_return;
    }
  }
  Status done;
  Result<pb::LedgerReply> from = co_await ledger.Send(Get(t, t.from()));
  if (!from) {
    done = from.error();
  } else if (from->balance() < t.amount()) {
    done = InvalidArgument("{}", Overdraft(t, from->balance()));
  } else {
    co_await loop.Sleep(gap);
    Result<pb::LedgerReply> set =
        co_await ledger.Send(Set(t, t.from(), from->balance() - t.amount()));
    Result<pb::LedgerReply> to = set ? co_await ledger.Send(Get(t, t.to())) : set;
    if (!to) {
      done = to.error();
    } else {
      co_await loop.Sleep(gap);
      Result<pb::LedgerReply> put =
          co_await ledger.Send(Set(t, t.to(), to->balance() + t.amount()));
      if (!put) done = put.error();
    }
  }
  if (t.mode() == pb::LOCKED) {
    if (auto r = co_await ledger.Send(Unlock(t, owner)); !r) {
      spdlog::warn("task {}/{}: {}", task.job_id(), task.index(), r.error().message);
    }
  }
  if (!done) {
    Fail(done.error(), result);
  } else {
    Succeed(t, result);
  }
}

}  // namespace fanout::jobs::bank
