#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <random>
#include <span>
#include <string_view>
#include <unordered_map>

#include "common/ready_file.h"
#include "common/transport.h"

namespace fanout::coordinator {
namespace {

// How many messages one socket may deliver before the loop looks at the
// others, so a flood on one side cannot starve the other.
constexpr int kBatch = 512;

// Decodes the envelopes of one ROUTER message and hands each to `handle`;
// answers garbage with an Error so a confused peer learns why it is ignored.
template <typename Handle>
void Receive(zmq::socket_t& router, Message& msg, const char* side, Handle&& handle) {
  const std::string peer = PeerName(msg.frames[0]);
  std::span<const zmq::message_t> payloads = Payloads(msg, /*from_router=*/true);
  if (payloads.empty()) {
    spdlog::warn("{} {}: dropped an empty message", side, PrintablePeer(peer));
  }
  for (const zmq::message_t& payload : payloads) {
    Result<pb::Envelope> env = Decode(payload);
    if (!env) {
      spdlog::warn("{} {}: dropped a frame: {}", side, PrintablePeer(peer), env.error().message);
      pb::Envelope reply = NewEnvelope();
      reply.mutable_error()->set_code(pb::Error::BAD_FRAME);
      reply.mutable_error()->set_message(env.error().message);
      SendTo(router, peer, reply);
      continue;
    }
    handle(peer, *env);
  }
}

// Sends what the scheduler queued, one batch per peer in queued order.
void Flush(zmq::socket_t& router, std::vector<Outgoing>& box, const char* side) {
  std::unordered_map<std::string_view, std::vector<zmq::message_t>> batches;
  for (const Outgoing& out : box) batches[out.peer].push_back(Encode(out.envelope));
  for (auto& [peer, frames] : batches) {
    std::span<zmq::message_t> all(frames);
    for (size_t at = 0; at < all.size(); at += kMaxBatch) {
      std::span<zmq::message_t> batch = all.subspan(at, std::min(kMaxBatch, all.size() - at));
      if (!SendBatch(router, peer, batch)) {
        spdlog::debug("{} {} is gone: {} messages not delivered", side, PrintablePeer(peer),
                      batch.size());
        break;
      }
    }
  }
  box.clear();
}

}  // namespace

std::string NewJobId() {
  static const uint32_t prefix = std::random_device()();
  static uint64_t seq = 0;
  return fmt::format("{:08x}-{}", prefix, ++seq);
}

int RunCoordinator(const CoordinatorOptions& options, int signal_fd) {
  zmq::context_t ctx(1);
  zmq::socket_t workers = MakeSocket(ctx, zmq::socket_type::router);
  zmq::socket_t clients = MakeSocket(ctx, zmq::socket_type::router);
  // Events for a client are never dropped: it gets everything or goes away.
  clients.set(zmq::sockopt::sndhwm, 0);

  Result<std::string> workers_at = Bind(workers, options.workers_endpoint);
  Result<std::string> clients_at = Bind(clients, options.clients_endpoint);
  for (const auto* bound : {&workers_at, &clients_at}) {
    if (!*bound) {
      spdlog::error("{}", bound->error().message);
      return 1;
    }
  }
  if (!options.ready_file.empty()) {
    if (Status s =
            WriteReadyFile(options.ready_file,
                           {{"workers", *workers_at}, {"clients", *clients_at}, {"pid", getpid()}});
        !s) {
      spdlog::error("{}", s.error().message);
      return 1;
    }
  }
  spdlog::info("coordinator up: workers on {}, clients on {}", *workers_at, *clients_at);

  Scheduler scheduler(options.scheduler, NewJobId);
  zmq::socket_t ledger = MakeSocket(ctx, zmq::socket_type::dealer);
  if (!options.scheduler.ledger.empty()) {
    if (Status s = Connect(ledger, options.scheduler.ledger); !s) {
      spdlog::error("--ledger: {}", s.error().message);
      return 1;
    }
  }
  std::vector<zmq::pollitem_t> items = {
      {workers.handle(), 0, ZMQ_POLLIN, 0},
      {clients.handle(), 0, ZMQ_POLLIN, 0},
      {nullptr, signal_fd, ZMQ_POLLIN, 0},
      {ledger.handle(), 0, ZMQ_POLLIN, 0},
  };
  Message msg;
  while (true) {
    TimePoint now = Now();
    const auto wait = std::chrono::ceil<milliseconds>(scheduler.NextWakeup(now) - now);
    zmq::poll(items, std::max(wait, milliseconds(0)));
    if (items[2].revents & ZMQ_POLLIN) {
      spdlog::info("coordinator stopping on signal ({} jobs running)", scheduler.job_count());
      return 0;
    }
    now = Now();
    for (int i = 0; i < kBatch && RecvMessage(workers, msg); ++i) {
      Receive(workers, msg, "worker", [&](const std::string& peer, const pb::Envelope& env) {
        scheduler.OnWorkerMessage(peer, env, now);
      });
    }
    for (int i = 0; i < kBatch && RecvMessage(clients, msg); ++i) {
      Receive(clients, msg, "client", [&](const std::string& peer, const pb::Envelope& env) {
        scheduler.OnClientMessage(peer, env, now);
      });
    }
    for (int i = 0; i < kBatch && RecvMessage(ledger, msg); ++i) {
      for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
        Result<pb::Envelope> env = Decode(frame);
        if (env && env->has_ledger_reply()) {
          scheduler.OnLedgerReply(env->ledger_reply(), now);
        } else {
          spdlog::warn("ledger: dropped a frame: {}", env ? BodyName(*env) : env.error().message);
        }
      }
    }
    if (now >= scheduler.NextWakeup(now) - milliseconds(1)) scheduler.Tick(now);
    scheduler.Dispatch(now);
    Flush(workers, scheduler.to_workers(), "worker");
    Flush(clients, scheduler.to_clients(), "client");
    for (const pb::Envelope& request : scheduler.to_ledger()) {
      if (!Send(ledger, request)) spdlog::debug("ledger request not queued; it will be re-sent");
    }
    scheduler.to_ledger().clear();
  }
}

}  // namespace fanout::coordinator
