#include "jobs/bank/ledger_client.h"

#include <spdlog/spdlog.h>

#include <random>
#include <thread>

#include "common/transport.h"

namespace fanout::jobs::bank {
namespace {

// Sockets for blocking calls live in their own context, made once and never
// destroyed: pool threads may still hold sockets when the process exits.
zmq::context_t& LedgerContext() {
  static auto* ctx = new zmq::context_t(1);
  return *ctx;
}

uint64_t RandomBase() { return std::random_device()() * uint64_t{1} << 32; }

zmq::socket_t Dealer(zmq::context_t& ctx) { return MakeSocket(ctx, zmq::socket_type::dealer); }

// Keys (when there are) and the connection; what went wrong, if anything.
Status Setup(zmq::socket_t& socket, const std::string& endpoint, const Keys* keys) {
  if (Status s = PrepareClient(socket, keys, Role::kLedger); !s) return s;
  return Connect(socket, endpoint);
}

std::string Name(const std::string& endpoint) { return "the ledger at " + endpoint; }

std::optional<pb::LedgerReply> ReplyIn(const Message& msg, uint64_t id) {
  for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
    Result<pb::Envelope> env = Decode(frame);
    if (env && env->has_ledger_reply() && env->ledger_reply().request_id() == id) {
      return env->ledger_reply();
    }
  }
  return std::nullopt;
}

}  // namespace

Result<pb::LedgerReply> Checked(pb::LedgerReply reply) {
  if (!reply.ok()) return InvalidArgument("ledger: {}", reply.error());
  return reply;
}

BlockingLedger::BlockingLedger(const std::string& endpoint, const Keys* keys)
    : endpoint_(endpoint),
      socket_(Dealer(LedgerContext())),
      setup_(Setup(socket_, endpoint, keys)),
      handshakes_(HandshakeWatch::Client(LedgerContext(), socket_, Name(endpoint), "worker",
                                         keys != nullptr)),
      next_id_(RandomBase()) {}

Result<pb::LedgerReply> BlockingLedger::Call(pb::LedgerRequest request) {
  if (!setup_) return setup_.error();
  const uint64_t id = ++next_id_;
  request.set_request_id(id);
  pb::Envelope env = NewEnvelope();
  *env.mutable_ledger_request() = std::move(request);
  const TimePoint give_up = Now() + kLedgerPatience;
  Message msg;
  while (Now() < give_up) {
    Send(socket_, env);
    const TimePoint resend = std::min(give_up, Now() + kLedgerResend);
    while (Now() < resend) {
      std::vector<zmq::pollitem_t> items = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                            {handshakes_.monitor().handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, std::chrono::ceil<milliseconds>(resend - Now()));
      handshakes_.Poll();
      if (!handshakes_.refused().empty()) return Unavailable("{}", handshakes_.refused());
      if (!RecvMessage(socket_, msg)) continue;
      std::optional<pb::LedgerReply> reply = ReplyIn(msg, id);
      if (!reply) continue;  // an answer to an earlier, re-sent request
      if (!reply->ok() && reply->retry()) {
        std::this_thread::sleep_for(milliseconds(100));
        break;  // the ledger asks to be asked again
      }
      return Checked(std::move(*reply));
    }
  }
  const std::string why = handshakes_.Explain(kLedgerPatience);
  if (!why.empty()) return Unavailable("{}", why);
  return Unavailable("the ledger at {} did not answer for {:.0f} s", endpoint_,
                     ToMillis(kLedgerPatience) / 1000);
}

BlockingLedger& ThreadLedger(const std::string& endpoint, const Keys* keys) {
  thread_local std::unordered_map<std::string, std::unique_ptr<BlockingLedger>> clients;
  auto& client = clients[endpoint];
  if (!client) client = std::make_unique<BlockingLedger>(endpoint, keys);
  return *client;
}

AsyncLedger::AsyncLedger(EventLoop& loop, const std::string& endpoint, const Keys* keys)
    : loop_(loop),
      endpoint_(endpoint),
      socket_(Dealer(LedgerContext())),
      setup_(Setup(socket_, endpoint, keys)),
      handshakes_(HandshakeWatch::Client(LedgerContext(), socket_, Name(endpoint), "worker",
                                         keys != nullptr)),
      next_id_(RandomBase()) {
  watch_ = loop_.WatchSocket(socket_, ZMQ_POLLIN, [this](short) { OnReadable(); });
  handshakes_watch_ =
      loop_.WatchSocket(handshakes_.monitor(), ZMQ_POLLIN, [this](short) { OnHandshakes(); });
}

Error AsyncLedger::NoAnswer() const {
  if (!setup_) return setup_.error();
  const std::string why = handshakes_.Explain(kLedgerPatience);
  if (!why.empty()) return Unavailable("{}", why);
  return Unavailable("the ledger at {} did not answer for {:.0f} s", endpoint_,
                     ToMillis(kLedgerPatience) / 1000);
}

void AsyncLedger::OnHandshakes() {
  handshakes_.Poll();
  if (handshakes_.refused().empty()) return;
  std::vector<Call*> ended;
  for (auto& [id, call] : calls_) {
    loop_.Cancel(call->resend);
    ended.push_back(call);
  }
  calls_.clear();
  for (Call* call : ended) call->waiter.resume();  // with no reply: the refusal
}

AsyncLedger::~AsyncLedger() {
  loop_.Unwatch(watch_);
  loop_.Unwatch(handshakes_watch_);
  for (auto& [id, call] : calls_) loop_.Cancel(call->resend);
}

void AsyncLedger::Start(Call& call) {
  if (!setup_ || !handshakes_.refused().empty()) {
    // Resumed from the loop, not from inside the co_await.
    loop_.After(Duration::zero(), [&call] { call.waiter.resume(); });
    return;
  }
  const uint64_t id = ++next_id_;
  call.request.mutable_ledger_request()->set_request_id(id);
  call.give_up_at = Now() + kLedgerPatience;
  calls_[id] = &call;
  Transmit(call);
}

void AsyncLedger::Transmit(Call& call) {
  const uint64_t id = call.request.ledger_request().request_id();
  if (Now() >= call.give_up_at) {
    calls_.erase(id);
    call.waiter.resume();  // with no reply: an error
    return;
  }
  fanout::Send(socket_, call.request);
  call.resend = loop_.After(kLedgerResend, [this, id] {
    auto it = calls_.find(id);
    if (it != calls_.end()) Transmit(*it->second);
  });
}

void AsyncLedger::OnReadable() {
  Message msg;
  std::vector<Call*> done;
  while (RecvMessage(socket_, msg)) {
    for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
      Result<pb::Envelope> env = Decode(frame);
      if (!env || !env->has_ledger_reply()) continue;
      auto it = calls_.find(env->ledger_reply().request_id());
      if (it == calls_.end()) continue;  // answered already
      Call* call = it->second;
      if (!env->ledger_reply().ok() && env->ledger_reply().retry()) continue;  // resend will ask
      loop_.Cancel(call->resend);
      call->reply = env->ledger_reply();
      calls_.erase(it);
      done.push_back(call);
    }
  }
  for (Call* call : done) call->waiter.resume();
}

AsyncLedger& AsyncLedgers::For(const std::string& endpoint, const Keys* keys) {
  auto& client = clients_[endpoint];
  if (!client) client = std::make_unique<AsyncLedger>(loop_, endpoint, keys);
  return *client;
}

}  // namespace fanout::jobs::bank
