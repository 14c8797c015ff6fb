#include "coordinator/ledger_calls.h"

#include <fmt/format.h>

#include <algorithm>

namespace fanout::coordinator {

void LedgerCalls::Call(const std::string& job, pb::LedgerRequest request, TimePoint now) {
  Forget(job);
  const uint64_t id = next_id_++;
  request.set_request_id(id);
  request.set_book(job);
  Pending& call = calls_[job];
  call.envelope = NewEnvelope();
  *call.envelope.mutable_ledger_request() = std::move(request);
  call.resend_at = now + kResend;
  call.give_up_at = now + kPatience;
  jobs_[id] = job;
  outbox_.push_back(call.envelope);
}

std::optional<std::string> LedgerCalls::OnReply(const pb::LedgerReply& reply, TimePoint now) {
  Heard(now);
  auto it = jobs_.find(reply.request_id());
  if (it == jobs_.end()) return std::nullopt;
  const std::string job = it->second;
  if (!reply.ok() && reply.retry()) {  // the ledger asked to be asked again
    calls_.at(job).resend_at = now + kResend;
    return std::nullopt;
  }
  calls_.erase(job);
  jobs_.erase(it);
  return job;
}

std::vector<std::string> LedgerCalls::Tick(TimePoint now) {
  std::vector<std::string> given_up;
  for (auto& [job, call] : calls_) {
    if (now >= call.give_up_at) {
      given_up.push_back(job);
    } else if (now >= call.resend_at) {
      outbox_.push_back(call.envelope);  // same request id
      call.resend_at = now + kResend;
    }
  }
  for (const std::string& job : given_up) Forget(job);
  if (!endpoint_.empty() && now >= next_ping_) {
    pb::Envelope ping = NewEnvelope();
    ping.mutable_status();  // a ledger answers it with an empty StatusReply
    outbox_.push_back(std::move(ping));
    next_ping_ = now + kPing;
  }
  return given_up;
}

void LedgerCalls::Forget(const std::string& job) {
  auto it = calls_.find(job);
  if (it == calls_.end()) return;
  jobs_.erase(it->second.envelope.ledger_request().request_id());
  calls_.erase(it);
}

TimePoint LedgerCalls::NextWakeup(TimePoint now) const {
  TimePoint next = endpoint_.empty() ? TimePoint::max() : next_ping_;
  for (const auto& [job, call] : calls_) next = std::min({next, call.resend_at, call.give_up_at});
  return std::max(next, now);
}

std::string LedgerCalls::GiveUpReason() const {
  return fmt::format("the ledger at {} did not answer for {:.0f} s", endpoint_,
                     ToMillis(kPatience) / 1000);
}

}  // namespace fanout::coordinator
