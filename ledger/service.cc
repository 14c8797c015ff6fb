#include "ledger/service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <thread>

#include "common/log.h"
#include "common/mutex.h"
#include "common/ready_file.h"
#include "common/transport.h"
#include "http/metrics.h"
#include "ledger/handler.h"
#include "ledger/lease.h"
#include "ledger/metrics.h"
#include "ledger/store.h"

namespace fanout::ledger {
namespace {

constexpr int kBatch = 512;
constexpr char kWork[] = "inproc://ledger-work";
constexpr char kReplies[] = "inproc://ledger-replies";

pb::Envelope Reply(const pb::LedgerRequest& request) {
  pb::Envelope env = NewEnvelope();
  env.mutable_ledger_reply()->set_request_id(request.request_id());
  return env;
}

// A reply waiting for its change to reach the disk.
struct Held {
  uint64_t ticket;
  std::string peer;
  pb::Envelope reply;
};

class Ledger {
 public:
  Ledger(const LedgerOptions& options, std::unique_ptr<Store> store)
      : options_(options), store_(std::move(store)) {}
  LedgerMetrics& metrics() { return metrics_; }
  int Run(int signal_fd);

 private:
  void OnRequest(Message& msg, TimePoint now);
  void OnLock(const std::string& peer, const pb::LedgerRequest& request, TimePoint now);
  void OnUnlock(const std::string& peer, const pb::LedgerRequest& request, TimePoint now);
  void Grant(const LeaseLocks::Grant& grant);
  void HandlerLoop();
  void CommitterLoop();

  LedgerOptions options_;
  std::unique_ptr<Store> store_;
  LedgerMetrics metrics_;  // counted whether or not --http serves them
  zmq::context_t ctx_{1};

  // Main thread only.
  LeaseLocks locks_;
  uint64_t next_tag_ = 1;
  std::map<uint64_t, std::pair<std::string, pb::LedgerRequest>> waiting_locks_;
  std::unique_ptr<zmq::socket_t> router_;
  zmq::socket_t* work_ = nullptr;
  uint64_t refused_ = 0;  // peers refused, for status

  Mutex mu_;
  CondVar wake_committer_;
  std::deque<Held> held_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
};

void SendReply(zmq::socket_t& push, const std::string& peer, const pb::Envelope& reply) {
  zmq::message_t frame = Encode(reply);
  SendParts(push, {zmq::buffer(peer)}, frame);
}

void Ledger::HandlerLoop() {
  zmq::socket_t work = MakeSocket(ctx_, zmq::socket_type::pull);
  zmq::socket_t replies = MakeSocket(ctx_, zmq::socket_type::push);
  work.connect(kWork);
  replies.connect(kReplies);
  while (true) {
    try {
      zmq::message_t peer, payload;
      if (!work.recv(peer) || !peer.more() || !work.recv(payload)) continue;
      MarkReceived();
      Result<pb::Envelope> env = Decode(payload);
      if (!env || !env->has_ledger_request()) continue;  // checked by the main thread
      const pb::LedgerRequest& request = env->ledger_request();
      pb::Envelope reply = Reply(request);
      const uint64_t ticket = Execute(*store_, request, reply.mutable_ledger_reply());
      if (request.has_transfer()) metrics_.Transfer(reply.ledger_reply());
      if (ticket == 0 || store_->durable() >= ticket) {
        SendReply(replies, PeerName(peer), reply);
        continue;
      }
      {
        MutexLock lock(mu_);
        held_.push_back({ticket, PeerName(peer), std::move(reply)});
      }
      wake_committer_.NotifyOne();
    } catch (const zmq::error_t&) {
      return;  // the context is terminating
    }
  }
}

void Ledger::CommitterLoop() {
  zmq::socket_t replies = MakeSocket(ctx_, zmq::socket_type::push);
  replies.connect(kReplies);
  while (true) {
    {
      MutexLock lock(mu_);
      while (!stopping_ && held_.empty()) wake_committer_.WaitFor(mu_, milliseconds(50));
      if (stopping_) return;
    }
    // Everything applied so far goes to disk in one transaction; replies
    // that arrive meanwhile wait for the next one.
    const TimePoint started = Now();
    Result<uint64_t> durable = store_->CommitPending();
    const double took = std::chrono::duration<double>(Now() - started).count();
    std::deque<Held> ready;
    {
      MutexLock lock(mu_);
      if (!durable) {
        ready.swap(held_);
      } else {
        while (!held_.empty() && held_.front().ticket <= *durable) {
          ready.push_back(std::move(held_.front()));
          held_.pop_front();
        }
        metrics_.Waiting(held_.size());
      }
    }
    if (!durable) spdlog::error("ledger: {}", durable.error().message);
    if (durable && !ready.empty()) metrics_.Committed(took, ready.size());
    for (Held& h : ready) {
      if (!durable) Fail(h.reply.mutable_ledger_reply(), durable.error());
      try {
        SendReply(replies, h.peer, h.reply);
      } catch (const zmq::error_t&) {
        return;
      }
    }
  }
}

void Ledger::OnLock(const std::string& peer, const pb::LedgerRequest& r, TimePoint now) {
  if (!store_->HasBook(r.book()) || r.lock().owner().empty()) {
    pb::Envelope reply = Reply(r);
    Fail(reply.mutable_ledger_reply(), r.lock().owner().empty()
                                           ? InvalidArgument("a lock needs an owner")
                                           : InvalidArgument("unknown book '{}'", r.book()));
    SendTo(*router_, peer, reply);
    return;
  }
  const Duration lease = milliseconds(std::max<uint32_t>(1, r.lock().lease_ms()));
  const uint64_t tag = next_tag_++;
  waiting_locks_[tag] = {peer, r};
  if (auto grant = locks_.Acquire(r.book(), r.lock().owner(), lease, tag, now)) Grant(*grant);
}

void Ledger::OnUnlock(const std::string& peer, const pb::LedgerRequest& r, TimePoint now) {
  std::optional<LeaseLocks::Grant> next;
  const bool held = locks_.Release(r.book(), r.unlock().owner(), now, &next);
  pb::Envelope reply = Reply(r);
  if (held) {
    reply.mutable_ledger_reply()->set_ok(true);
  } else {
    Fail(reply.mutable_ledger_reply(),
         InvalidArgument("{} does not hold the lock of '{}' (its lease ran out?)",
                         r.unlock().owner(), r.book()));
  }
  SendTo(*router_, peer, reply);
  if (next) Grant(*next);
}

void Ledger::Grant(const LeaseLocks::Grant& grant) {
  auto it = waiting_locks_.find(grant.tag);
  if (it == waiting_locks_.end()) return;
  pb::Envelope reply = Reply(it->second.second);
  reply.mutable_ledger_reply()->set_ok(true);
  SendTo(*router_, it->second.first, reply);
  waiting_locks_.erase(it);
}

void Ledger::OnRequest(Message& msg, TimePoint now) {
  const std::string peer = PeerName(msg.frames[0]);
  for (zmq::message_t& payload : msg.frames) {
    if (&payload == &msg.frames[0]) continue;
    Result<pb::Envelope> env = Decode(payload);
    if (env && env->has_status()) {  // `fanout health`: we are up
      pb::Envelope reply = NewEnvelope();
      reply.mutable_status_reply()->set_service("ledger");
      reply.mutable_status_reply()->set_keyed(options_.keys != nullptr);
      reply.mutable_status_reply()->set_refused(refused_);
      SendTo(*router_, peer, reply);
      continue;
    }
    if (env && (env->has_hello() || env->has_submit() || env->has_watch() || env->has_jobs() ||
                env->has_cancel())) {
      // A worker or a client given the ledger's address by mistake.
      pb::Envelope reply = NewEnvelope();
      reply.mutable_error()->set_code(pb::Error::WRONG_SERVICE);
      reply.mutable_error()->set_message(
          "this is a ledger, not a coordinator (ledgers listen on port 5557 by default)");
      SendTo(*router_, peer, reply);
      continue;
    }
    if (!env || !env->has_ledger_request()) {
      const std::string why =
          env ? fmt::format("'{}' is not a ledger request", BodyName(*env)) : env.error().message;
      static LogLimiter dropped(10);
      if (std::optional<uint64_t> skipped = dropped.Allow(now)) {
        spdlog::warn("ledger: dropped a frame from {}: {}{}", PrintablePeer(peer), why,
                     SkippedNote(*skipped));
      }
      pb::Envelope reply = NewEnvelope();
      reply.mutable_error()->set_code(env ? pb::Error::BAD_REQUEST : pb::Error::BAD_FRAME);
      reply.mutable_error()->set_message(why);
      SendTo(*router_, peer, reply);
      continue;
    }
    const pb::LedgerRequest& request = env->ledger_request();
    switch (request.op_case()) {
      case pb::LedgerRequest::kLock:
        OnLock(peer, request, now);
        break;
      case pb::LedgerRequest::kUnlock:
        OnUnlock(peer, request, now);
        break;
      default: {
        if (request.has_reset() && !request.reset().keep_existing()) locks_.Drop(request.book());
        SendParts(*work_, {zmq::buffer(peer)}, payload);
      }
    }
  }
}

int Ledger::Run(int signal_fd) {
  router_ = std::make_unique<zmq::socket_t>(MakeSocket(ctx_, zmq::socket_type::router));
  router_->set(zmq::sockopt::sndhwm, 0);  // replies are never dropped
  zmq::socket_t work = MakeSocket(ctx_, zmq::socket_type::push);
  zmq::socket_t replies = MakeSocket(ctx_, zmq::socket_type::pull);
  work.bind(kWork);
  replies.bind(kReplies);
  work_ = &work;
  // Who may connect: the ZAP handler is up before the socket binds.
  Result<std::unique_ptr<ZapHandler>> started =
      ZapHandler::StartFor(ctx_, options_.keys.get(), "ledger");
  if (!started) {
    spdlog::error("{}", started.error().message);
    return 2;
  }
  std::unique_ptr<ZapHandler> zap = std::move(*started);
  if (Status s = PrepareServer(*router_, options_.endpoint, options_.keys.get(), options_.insecure);
      !s) {
    spdlog::error("{}", s.error().message);
    return 2;
  }
  if (!options_.keys && !IsLoopback(options_.endpoint)) {
    spdlog::warn("--insecure: anyone who can reach {} may move money", options_.endpoint);
  }
  HandshakeWatch watch = HandshakeWatch::Server(ctx_, *router_, "ledger");
  Result<std::string> bound = Bind(*router_, options_.endpoint);
  if (!bound) {
    spdlog::error("{}", bound.error().message);
    return 1;
  }
  if (!options_.ready_file.empty()) {
    if (Status s = WriteReadyFile(options_.ready_file, {{"endpoint", *bound}, {"pid", getpid()}});
        !s) {
      spdlog::error("{}", s.error().message);
      return 1;
    }
  }
  const int threads = options_.threads > 0 ? options_.threads : Cores();
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([this] { HandlerLoop(); });
  std::thread committer([this] { CommitterLoop(); });
  spdlog::info("ledger up on {} ({} handler threads, db {})", *bound, threads, options_.db);

  std::vector<zmq::pollitem_t> items = {{router_->handle(), 0, ZMQ_POLLIN, 0},
                                        {replies.handle(), 0, ZMQ_POLLIN, 0},
                                        {nullptr, signal_fd, ZMQ_POLLIN, 0},
                                        {watch.monitor().handle(), 0, ZMQ_POLLIN, 0}};
  Message msg;
  while (true) {
    TimePoint now = Now();
    const TimePoint next = locks_.NextExpiry();
    const auto wait = next == TimePoint::max()
                          ? milliseconds(1000)
                          : std::clamp(std::chrono::ceil<milliseconds>(next - now), milliseconds(0),
                                       milliseconds(1000));
    zmq::poll(items, wait);
    now = Now();
    if (items[2].revents & ZMQ_POLLIN) break;
    if (items[3].revents & ZMQ_POLLIN) watch.Poll();
    refused_ = (zap ? zap->refused() : 0) + watch.failed();
    for (int i = 0; i < kBatch && RecvMessage(*router_, msg); ++i) OnRequest(msg, now);
    for (int i = 0; i < kBatch && RecvMessage(replies, msg); ++i) {
      if (msg.size() == 2) SendBatch(*router_, PeerName(msg.frames[0]), {&msg.frames[1], 1});
    }
    for (const LeaseLocks::Grant& grant : locks_.Expire(now)) {
      spdlog::warn("ledger: lease on '{}' ran out; granted to {}", grant.book, grant.owner);
      Grant(grant);
    }
  }
  spdlog::info("ledger stopping");
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_committer_.NotifyAll();
  committer.join();
  if (Result<uint64_t> d = store_->CommitPending(); !d) spdlog::error("{}", d.error().message);
  work_ = nullptr;
  work.close();
  replies.close();
  router_.reset();
  ctx_.shutdown();  // handler threads leave their recv
  for (std::thread& t : pool) t.join();
  return 0;
}

}  // namespace

int RunLedger(const LedgerOptions& options, int signal_fd) {
  Result<std::unique_ptr<Store>> store = Store::Open(options.db);
  if (!store) {
    spdlog::error("{}", store.error().message);
    return 1;
  }
  Ledger ledger(options, std::move(*store));
  Result<std::unique_ptr<http::Server>> http = http::ServeMetricsIfAsked(
      options.http, options.keys.get(), options.insecure, ledger.metrics().registry(), "ledger");
  if (!http) {
    spdlog::error("{}", http.error().message);
    return 2;
  }
  return ledger.Run(signal_fd);
}

}  // namespace fanout::ledger
