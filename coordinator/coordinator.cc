#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <random>
#include <span>
#include <unordered_map>

#include "common/log.h"
#include "common/ready_file.h"
#include "common/transport.h"
#include "coordinator/http_side.h"

namespace fanout::coordinator {
namespace {

// How many messages one socket may deliver before the loop looks at the
// others, so a flood on one side cannot starve the other.
constexpr int kBatch = 512;

// Messages (each up to kMaxBatch envelopes) queued in ZeroMQ for one client
// before it counts as slow and its jobs pause.
constexpr int kClientQueue = 64;

// Ended jobs leave the journal (options.keep_results after they ended)
// this often.
constexpr Duration kPruneEvery = std::chrono::minutes(1);
// After the grace period, how long ended bank jobs may wait for their book.
constexpr Duration kLedgerGrace = std::chrono::seconds(5);

// Decodes the envelopes of one ROUTER message and hands each to `handle`;
// answers garbage with an Error so a confused peer learns why it is ignored.
template <typename Handle>
void Receive(zmq::socket_t& router, Message& msg, const char* side, Handle&& handle) {
  const std::string peer = PeerName(msg.frames[0]);
  std::span<const zmq::message_t> payloads = Payloads(msg, /*from_router=*/true);
  if (payloads.empty()) {
    spdlog::warn("{} {}: dropped an empty message", side, PrintablePeer(peer));
  }
  static LogLimiter dropped(10);  // one per side: each `handle` is its own instance
  for (const zmq::message_t& payload : payloads) {
    Result<pb::Envelope> env = Decode(payload);
    if (!env) {
      if (std::optional<uint64_t> skipped = dropped.Allow(Now())) {
        spdlog::warn("{} {}: dropped a frame: {}{}", side, PrintablePeer(peer), env.error().message,
                     SkippedNote(*skipped));
      }
      pb::Envelope reply = NewEnvelope();
      reply.mutable_error()->set_code(pb::Error::BAD_FRAME);
      reply.mutable_error()->set_message(env.error().message);
      SendTo(router, peer, reply);
      continue;
    }
    handle(peer, *env);
  }
}

// What the scheduler queued for the peers of one ROUTER, sent per peer in
// queued order, up to kMaxBatch envelopes a message. A peer that reads
// slower than we send fills its queue (the socket's high-water mark): what
// does not fit waits here and goes first next time. For clients the
// scheduler is told, and dispatches nothing more for that client until it
// catches up (back-pressure), so this holds at most the events of the tasks
// already in flight. Workers' queues never fill: credit bounds what they
// are sent. What a peer that has gone misses is dropped.
class Outbox {
 public:
  // `side` names the peers in logs; `scheduler`, when given, hears which
  // peers are blocked.
  Outbox(const char* side, Scheduler* scheduler) : side_(side), scheduler_(scheduler) {}

  void Flush(zmq::socket_t& router, std::vector<Outgoing>& box) {
    for (Outgoing& out : box) waiting_[out.peer].frames.push_back(Encode(out.envelope));
    box.clear();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      const std::string& peer = it->first;
      Queue& q = it->second;
      Sent sent = Sent::kOk;
      while (q.next < q.frames.size() && sent == Sent::kOk) {
        std::span<zmq::message_t> batch(q.frames.data() + q.next,
                                        std::min(kMaxBatch, q.frames.size() - q.next));
        sent = TrySendBatch(router, peer, batch);
        if (sent == Sent::kOk) q.next += batch.size();
      }
      if (sent == Sent::kGone) {
        spdlog::debug("{} {} is gone: {} messages not delivered", side_, PrintablePeer(peer),
                      q.frames.size() - q.next);
      }
      if (sent == Sent::kFull) {
        // Keep what is left, compacted now and then.
        if (q.next > 4096) {
          q.frames.erase(q.frames.begin(), q.frames.begin() + static_cast<ptrdiff_t>(q.next));
          q.next = 0;
        }
        if (!q.blocked && scheduler_ != nullptr) scheduler_->SetClientBlocked(peer, true);
        q.blocked = true;
        ++it;
        continue;
      }
      if (q.blocked && scheduler_ != nullptr) scheduler_->SetClientBlocked(peer, false);
      it = waiting_.erase(it);
    }
  }
  bool waiting() const { return !waiting_.empty(); }

 private:
  struct Queue {
    std::vector<zmq::message_t> frames;
    size_t next = 0;  // frames before it are sent
    bool blocked = false;
  };
  const char* side_;
  Scheduler* scheduler_;
  std::unordered_map<std::string, Queue> waiting_;
};

}  // namespace

std::string NewJobId() {
  static const uint32_t prefix = std::random_device()();
  static uint64_t seq = 0;
  return fmt::format("{:08x}-{}", prefix, ++seq);
}

int RunCoordinator(const CoordinatorOptions& options, int signal_fd) {
  // The journal first: a second coordinator on the same file stops here,
  // before it binds anything or reports itself ready.
  std::unique_ptr<Journal> journal;
  if (!options.journal.empty()) {
    Result<std::unique_ptr<Journal>> opened = Journal::Open(options.journal);
    if (!opened) {
      spdlog::error("{}", opened.error().message);
      return 1;
    }
    journal = std::move(*opened);
  }
  zmq::context_t ctx(1);
  zmq::socket_t workers = MakeSocket(ctx, zmq::socket_type::router);
  zmq::socket_t clients = MakeSocket(ctx, zmq::socket_type::router);
  // Credit bounds what is queued for a worker: no high-water mark needed.
  // A client's queue holds kClientQueue messages; past that, its Outbox.
  workers.set(zmq::sockopt::sndhwm, 0);
  clients.set(zmq::sockopt::sndhwm, kClientQueue);

  // Who may connect: the ZAP handler is up before anything binds.
  Result<std::unique_ptr<ZapHandler>> started =
      ZapHandler::StartFor(ctx, options.keys.get(), "coordinator");
  if (!started) {
    spdlog::error("{}", started.error().message);
    return 2;
  }
  std::unique_ptr<ZapHandler> zap = std::move(*started);
  for (auto [socket, endpoint] : {std::pair{&workers, &options.workers_endpoint},
                                  std::pair{&clients, &options.clients_endpoint}}) {
    if (Status s = PrepareServer(*socket, *endpoint, options.keys.get(), options.insecure); !s) {
      spdlog::error("{}", s.error().message);
      return 2;
    }
    if (!options.keys && !IsLoopback(*endpoint)) {
      spdlog::warn("--insecure: anyone who can reach {} is trusted, as a worker or a client",
                   *endpoint);
    }
  }
  HandshakeWatch workers_watch = HandshakeWatch::Server(ctx, workers, "coordinator (workers)");
  HandshakeWatch clients_watch = HandshakeWatch::Server(ctx, clients, "coordinator (clients)");

  Result<std::string> workers_at = Bind(workers, options.workers_endpoint);
  Result<std::string> clients_at = Bind(clients, options.clients_endpoint);
  for (const auto* bound : {&workers_at, &clients_at}) {
    if (!*bound) {
      spdlog::error("{}", bound->error().message);
      return 1;
    }
  }
  std::unique_ptr<HttpSide> http;
  if (!options.http.empty()) {
    Result<std::unique_ptr<HttpSide>> started =
        HttpSide::Start(options.http, options.keys.get(), options.insecure);
    if (!started && started.error().code == Error::Code::kInvalidArgument) {
      spdlog::error("{}", started.error().message);
      return 2;
    }
    if (!started) {
      spdlog::warn("{}: running without the dashboard and /metrics", started.error().message);
    } else {
      http = std::move(*started);
    }
  }
  if (!options.ready_file.empty()) {
    nlohmann::json ready = {{"workers", *workers_at}, {"clients", *clients_at}, {"pid", getpid()}};
    if (http) ready["http"] = http->url();
    if (Status s = WriteReadyFile(options.ready_file, ready); !s) {
      spdlog::error("{}", s.error().message);
      return 1;
    }
  }
  spdlog::info("coordinator up: workers on {}, clients on {}{}", *workers_at, *clients_at,
               http ? fmt::format(", dashboard and /metrics at {}", http->url()) : "");

  Scheduler scheduler(options.scheduler, NewJobId, journal.get());
  const int64_t keep_us = std::chrono::duration_cast<microseconds>(options.keep_results).count();
  if (journal) {
    journal->Prune(UnixMicros() - keep_us);
    // `fanout jobs --all` lists what ended before this start too.
    std::vector<JournaledJob> ended = journal->RecentlyEnded(options.scheduler.remember_ended);
    for (auto it = ended.rbegin(); it != ended.rend(); ++it) {
      scheduler.RememberEnded(
          Scheduler::EndedInfo(it->spec, *it->done, it->accepted_us, it->ended_us));
    }
    Result<std::vector<JournaledJob>> unfinished = journal->Unfinished();
    if (!unfinished) {
      spdlog::error("{}", unfinished.error().message);
      return 1;
    }
    for (const JournaledJob& job : *unfinished) scheduler.Restore(job, Now());
    if (Status s = journal->Commit(); !s) spdlog::error("{}", s.error().message);
  }
  zmq::socket_t ledger = MakeSocket(ctx, zmq::socket_type::dealer);
  HandshakeWatch ledger_watch =
      HandshakeWatch::Client(ctx, ledger, fmt::format("the ledger at {}", options.scheduler.ledger),
                             "coordinator", options.keys != nullptr);
  if (!options.scheduler.ledger.empty()) {
    if (Status s = PrepareClient(ledger, options.keys.get(), Role::kLedger); !s) {
      spdlog::error("--ledger: {}", s.error().message);
      return 2;
    }
    if (Status s = Connect(ledger, options.scheduler.ledger); !s) {
      spdlog::error("--ledger: {}", s.error().message);
      return 1;
    }
  }
  std::string ledger_refused;  // said once per reason
  std::vector<zmq::pollitem_t> items = {
      {workers.handle(), 0, ZMQ_POLLIN, 0},
      {clients.handle(), 0, ZMQ_POLLIN, 0},
      {nullptr, signal_fd, ZMQ_POLLIN, 0},
      {ledger.handle(), 0, ZMQ_POLLIN, 0},
      {workers_watch.monitor().handle(), 0, ZMQ_POLLIN, 0},
      {clients_watch.monitor().handle(), 0, ZMQ_POLLIN, 0},
      {ledger_watch.monitor().handle(), 0, ZMQ_POLLIN, 0},
  };
  Message msg;
  Outbox to_workers("worker", nullptr);
  Outbox to_clients("client", &scheduler);
  bool journal_broken = false;
  std::optional<TimePoint> stop_at;  // set by the first signal: the grace period's end
  bool ended_all = false;
  TimePoint prune_at = Now() + kPruneEvery;
  std::vector<double> commits;  // seconds each, for /metrics
  while (true) {
    TimePoint now = Now();
    TimePoint wake = scheduler.NextWakeup(now);
    if (stop_at) wake = std::min(wake, *stop_at);
    if (http) wake = std::min(wake, http->next_publish());
    // A slow client's queue is retried soon: it may have read meanwhile.
    if (to_clients.waiting()) wake = std::min(wake, now + milliseconds(10));
    const auto wait = std::chrono::ceil<milliseconds>(wake - now);
    zmq::poll(items, std::max(wait, milliseconds(0)));
    now = Now();
    if (items[2].revents & ZMQ_POLLIN) {
      signalfd_siginfo info;
      while (read(signal_fd, &info, sizeof info) == sizeof info) {
      }
      if (stop_at) {
        spdlog::warn("second signal: stopping now ({} jobs running)", scheduler.job_count());
        return 0;
      }
      stop_at = now + options.grace_period;
      scheduler.StopAccepting("the coordinator is shutting down");
      spdlog::info("stopping on signal: no new jobs; {} running have {:.0f} s to finish",
                   scheduler.job_count(), ToMillis(options.grace_period) / 1000);
    }
    if (stop_at && now >= *stop_at && !ended_all) {
      scheduler.EndAll(fmt::format("the coordinator stopped: its grace period of {:.0f} s ended",
                                   ToMillis(options.grace_period) / 1000),
                       now);
      ended_all = true;
    }
    for (int i = 0; i < kBatch && RecvMessage(workers, msg); ++i) {
      Receive(workers, msg, "worker", [&](const std::string& peer, pb::Envelope& env) {
        scheduler.OnWorkerMessage(peer, std::move(env), now);
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
        } else if (env && env->has_status_reply()) {
          scheduler.OnLedgerAlive(now);  // the answer to a health ping
        } else {
          spdlog::warn("ledger: dropped a frame: {}", env ? BodyName(*env) : env.error().message);
        }
      }
    }
    if ((items[4].revents | items[5].revents | items[6].revents) & ZMQ_POLLIN) {
      workers_watch.Poll();
      clients_watch.Poll();
      ledger_watch.Poll();
      if (ledger_watch.refused() != ledger_refused) {
        ledger_refused = ledger_watch.refused();
        if (!ledger_refused.empty()) spdlog::error("{}", ledger_refused);
      }
    }
    scheduler.SetSecurity(
        options.keys != nullptr,
        (zap ? zap->refused() : 0) + workers_watch.failed() + clients_watch.failed());
    if (now >= scheduler.NextWakeup(now) - milliseconds(1)) scheduler.Tick(now);
    scheduler.Dispatch(now);
    if (journal) {
      if (now >= prune_at) {
        journal->Prune(UnixMicros() - keep_us);
        prune_at = now + kPruneEvery;
      }
      // What goes out below is on disk first: a restart resumes from here.
      // Once it cannot be written, new jobs are refused; said once here.
      const TimePoint commit_started = Now();
      if (Status s = journal->Commit(); !s && !journal_broken) {
        spdlog::error("{}; new jobs are refused, running ones go on", s.error().message);
        journal_broken = true;
      }
      if (http) commits.push_back(std::chrono::duration<double>(Now() - commit_started).count());
    }
    if (http) {
      for (const HttpSide::CancelRequest& cancel : http->TakeCancels()) {
        scheduler.CancelJob(cancel.job_id, fmt::format("cancelled by {}", cancel.by), now);
      }
      // Last before sending: what the scheduler says to the dashboard goes
      // to it, never out of a socket.
      http->Exchange(scheduler, now);
      if (http->Due(now)) http->Publish(scheduler, std::exchange(commits, {}), now);
    }
    to_workers.Flush(workers, scheduler.to_workers());
    to_clients.Flush(clients, scheduler.to_clients());
    for (const pb::Envelope& request : scheduler.to_ledger()) {
      if (!Send(ledger, request)) spdlog::debug("ledger request not queued; it will be re-sent");
    }
    scheduler.to_ledger().clear();
    if (stop_at && scheduler.job_count() == 0) {
      spdlog::info("coordinator stopped: every job ended");
      return 0;
    }
    // Ended jobs wait only for the ledger's snapshot (30 s at most); past
    // that, nothing more will come.
    if (stop_at && now >= *stop_at + kLedgerGrace) {
      spdlog::warn("coordinator stopped with {} jobs still closing", scheduler.job_count());
      return 0;
    }
  }
}

}  // namespace fanout::coordinator
