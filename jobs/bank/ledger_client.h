// Calling the ledger from a worker: request, reply, and sending the same
// request again (same id) until it is answered, so a ledger that restarts
// mid-call costs a delay, not a failed task. Safe because every ledger
// operation is idempotent for a repeated request (transfers by transfer_id).
//
// BlockingLedger is for the sync and threads models (one per thread);
// AsyncLedger runs on the async model's event loop, its callers suspended
// while they wait.
#pragma once

#include <coroutine>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/codec.h"
#include "common/event_loop.h"
#include "common/result.h"
#include "common/security.h"

namespace fanout::jobs::bank {

inline constexpr Duration kLedgerResend = milliseconds(1000);
inline constexpr Duration kLedgerPatience = milliseconds(30'000);

// Turns a reply into a result: an error reply is an error.
Result<pb::LedgerReply> Checked(pb::LedgerReply reply);

// With `keys` (the worker's --keys), the ledger is reached with CURVE; a
// refusal ends a call at once, with the reason.
class BlockingLedger {
 public:
  BlockingLedger(const std::string& endpoint, const Keys* keys);
  Result<pb::LedgerReply> Call(pb::LedgerRequest request);

 private:
  std::string endpoint_;
  zmq::socket_t socket_;
  Status setup_;  // what was wrong with the keys, if anything
  HandshakeWatch handshakes_;
  uint64_t next_id_;
};

// The calling thread's client for `endpoint`.
BlockingLedger& ThreadLedger(const std::string& endpoint, const Keys* keys);

class AsyncLedger {
 public:
  AsyncLedger(EventLoop& loop, const std::string& endpoint, const Keys* keys);
  ~AsyncLedger();

  struct Call {
    pb::Envelope request;
    std::coroutine_handle<> waiter;
    std::optional<pb::LedgerReply> reply;
    TimePoint give_up_at;
    EventLoop::TimerId resend;
  };

  // co_await ledger.Send(request): the reply, or an error after kLedgerPatience.
  auto Send(pb::LedgerRequest request) {
    struct Awaiter {
      AsyncLedger& ledger;
      Call call;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) {
        call.waiter = h;
        ledger.Start(call);
      }
      Result<pb::LedgerReply> await_resume() {
        if (!call.reply) return ledger.NoAnswer();
        return Checked(std::move(*call.reply));
      }
    };
    pb::Envelope env = NewEnvelope();
    *env.mutable_ledger_request() = std::move(request);
    return Awaiter{*this, Call{std::move(env), {}, std::nullopt, {}, {}}};
  }

 private:
  void Start(Call& call);
  void Transmit(Call& call);
  void OnReadable();
  // A refusal: every call ends now.
  void OnHandshakes();
  Error NoAnswer() const;

  EventLoop& loop_;
  std::string endpoint_;
  zmq::socket_t socket_;
  Status setup_;
  HandshakeWatch handshakes_;
  EventLoop::WatchId watch_, handshakes_watch_;
  uint64_t next_id_;
  std::unordered_map<uint64_t, Call*> calls_;
};

// The loop's clients, one per ledger endpoint (a worker may serve jobs of
// coordinators with different ledgers).
class AsyncLedgers {
 public:
  explicit AsyncLedgers(EventLoop& loop) : loop_(loop) {}
  AsyncLedger& For(const std::string& endpoint, const Keys* keys);

 private:
  EventLoop& loop_;
  std::unordered_map<std::string, std::unique_ptr<AsyncLedger>> clients_;
};

}  // namespace fanout::jobs::bank
