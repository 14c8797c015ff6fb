// LedgerCalls: the requests the coordinator makes to the ledger around
// jobs whose kind needs it (a bank job's book opened before its first task
// and read back after its last; see JobKind::needs_ledger).
//
// One call in flight per job. A call unanswered for kResend is sent again
// with the same request id (the ledger applies it once whatever arrives
// twice); after kPatience it is given up. No sockets and no clock: the
// scheduler hands it replies and the time, and sends what it queues.
// Single-threaded, like the scheduler.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"

namespace fanout::coordinator {

class LedgerCalls {
 public:
  static constexpr Duration kResend = milliseconds(1000);
  static constexpr Duration kPatience = milliseconds(30'000);
  // Without calls, the ledger is asked how it is this often (its health).
  static constexpr Duration kPing = milliseconds(5000);

  explicit LedgerCalls(std::string endpoint) : endpoint_(std::move(endpoint)) {}

  // Sends `request` for `job` (replacing any call it had in flight).
  void Call(const std::string& job, pb::LedgerRequest request, TimePoint now);
  // The job whose call `reply` answers; nullopt for an answer to a call
  // already answered or forgotten, and for "ask again later" (it is re-sent).
  std::optional<std::string> OnReply(const pb::LedgerReply& reply, TimePoint now);
  // Re-sends what is due, and pings an idle ledger; returns the jobs whose
  // call was given up.
  std::vector<std::string> Tick(TimePoint now);
  void Forget(const std::string& job);
  // The ledger answered something (a reply, a ping's answer).
  void Heard(TimePoint now) { heard_ = now; }
  // When it last answered; nullopt if never.
  std::optional<TimePoint> heard() const { return heard_; }

  TimePoint NextWakeup(TimePoint now) const;
  // Why a given-up call failed: "the ledger at tcp://... did not answer for 30 s".
  std::string GiveUpReason() const;
  const std::string& endpoint() const { return endpoint_; }
  // Requests to send, in order; the caller sends and clears.
  std::vector<pb::Envelope>& outbox() { return outbox_; }

 private:
  struct Pending {
    pb::Envelope envelope;
    TimePoint resend_at;
    TimePoint give_up_at;
  };
  std::string endpoint_;
  uint64_t next_id_ = 1;
  std::unordered_map<std::string, Pending> calls_;  // by job
  std::unordered_map<uint64_t, std::string> jobs_;  // request id -> job
  std::vector<pb::Envelope> outbox_;
  std::optional<TimePoint> heard_;
  TimePoint next_ping_{};
};

}  // namespace fanout::coordinator
