#include "sim/world.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "sim/actors.h"

namespace fanout::sim {
namespace {

constexpr size_t kRecentLines = 40;
// After the faults stop, every job must end within this (simulated) time:
// the longest chain is a client back after a coordinator restart (a few
// seconds), stuck attempts past their deadline (3 x 20 s at most), and the
// ledger's patience (30 s).
constexpr Duration kCalmBound = std::chrono::minutes(4);
constexpr int64_t kUnixBase = 1'800'000'000'000'000;

pb::JobSpec RandomSpec(Rng& rng) {
  pb::JobSpec spec;
  const pb::Model models[] = {pb::SYNC, pb::THREADS, pb::ASYNC};
  spec.set_model(models[rng.Between(0, 2)]);
  spec.set_count(static_cast<uint32_t>(rng.Between(1, 24)));
  if (rng.Chance(0.5)) spec.set_concurrency(static_cast<uint32_t>(rng.Between(1, 8)));
  if (rng.Chance(0.3)) spec.set_max_workers(static_cast<uint32_t>(rng.Between(1, 3)));
  if (rng.Chance(0.3)) spec.set_task_timeout_ms(static_cast<uint32_t>(rng.Between(500, 4000)));
  if (rng.Chance(0.2)) spec.set_max_attempts(static_cast<uint32_t>(rng.Between(1, 4)));
  if (rng.Chance(0.5)) spec.set_priority(static_cast<uint32_t>(rng.Between(0, 9)));
  spec.set_detached(rng.Chance(0.15));
  const uint64_t kind = rng.Between(0, 9);
  if (kind < 6) {
    spec.mutable_math()->set_start(1);
    spec.mutable_math()->set_iterations(10);
  } else if (kind < 9) {
    pb::BankJob* bank = spec.mutable_bank();
    bank->set_accounts(5);
    bank->set_initial(1000);
    bank->set_amount_max(100);
    bank->set_seed(rng.Next());
    bank->set_mode(pb::ATOMIC);
  } else {
    pb::ExecJob* exec = spec.mutable_exec();
    exec->add_command("true");
    for (uint32_t i = 0; i < spec.count(); ++i) exec->add_items(fmt::format("item-{}", i + 1));
  }
  return spec;
}

}  // namespace

// ---- the ledger ----------------------------------------------------------------

void SimLedger::OnRequest(const pb::LedgerRequest& request) {
  if (down_) {
    world_.Trace(fmt::format("ledger is down: request {} for {} lost", request.request_id(),
                             request.book()));
    return;
  }
  pb::LedgerReply reply;
  reply.set_request_id(request.request_id());
  Rng& rng = world_.rng();
  if (world_.faulty() && world_.options().faults >= 2 && rng.Chance(0.1)) {
    reply.set_retry(true);  // "busy: ask again"
  } else if (request.has_reset()) {
    open_.insert(request.book());
    reply.set_ok(true);
  } else if (request.has_snapshot()) {
    if (request.snapshot().close()) sealed_.insert(request.book());
    if (JobTruth* truth = world_.Job(request.book()); truth != nullptr && !truth->snapshot) {
      truth->snapshot = world_.now();
    }
    reply.set_ok(true);
    (*reply.mutable_balances())["bank_1"] = 1000;
  } else {
    reply.set_ok(false);
    reply.set_error("not a coordinator's request");
  }
  world_.Trace(fmt::format("ledger answers request {} for {}{}", request.request_id(),
                           request.book(), reply.retry() ? ": ask again" : ""));
  pb::Envelope env = NewEnvelope();
  *env.mutable_ledger_reply() = reply;
  const int copies = world_.faulty() && rng.Chance(0.05) ? 2 : 1;
  for (int i = 0; i < copies; ++i) world_.ReplyFromLedger(env);
}

SimLedger::Applied SimLedger::Apply(const std::string& job, uint32_t index) {
  if (down_) return Applied::kDown;
  if (applied_.contains({job, index})) return Applied::kDone;  // once per transfer id
  if (sealed_.contains(job)) return Applied::kRefused;
  applied_.emplace(job, index);
  if (!open_.contains(job)) {
    world_.Violate("book-open",
                   fmt::format("transfer {}/{} applied before the book was open", job, index));
  }
  const JobTruth* truth = world_.Job(job);
  if (truth != nullptr && truth->snapshot) {
    world_.Violate("book-closed",
                   fmt::format("transfer {}/{} applied after the book was read back ({:.0f} ms "
                               "before)",
                               job, index, ToMillis(world_.now() - *truth->snapshot)));
  }
  return Applied::kDone;
}

// ---- the world -----------------------------------------------------------------

World::World(uint64_t seed, const SimOptions& options)
    : seed_(seed),
      options_(options),
      rng_(seed),
      start_(TimePoint(std::chrono::hours(1000))),
      now_(start_),
      ledger_(*this) {
  std::string dir = options.dir;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    dir = tmp != nullptr && *tmp ? tmp : "/tmp";
  }
  journal_path_ = fmt::format("{}/fanout-sim-{}-{}.db", dir, getpid(), seed);
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((journal_path_ + suffix).c_str());
  result_.seed = seed;
}

World::~World() {
  scheduler_.reset();
  journal_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((journal_path_ + suffix).c_str());
}

void World::At(TimePoint when, std::function<void()> fn) {
  queue_.push({std::max(when, now_), seq_++, std::move(fn)});
}

void World::Trace(std::string line) {
  const double ms = ToMillis(now_ - start_);
  std::string entry = fmt::format("{:12.3f}  {}", ms, line);
  for (unsigned char c : entry) hash_ = (hash_ ^ c) * 0x100000001b3ULL;
  hash_ = (hash_ ^ '\n') * 0x100000001b3ULL;
  if (options_.trace) fmt::print("{}\n", entry);
  recent_.push_back(std::move(entry));
  if (recent_.size() > kRecentLines) recent_.pop_front();
}

void World::Violate(const std::string& name, const std::string& what) {
  if (!result_.violations.empty()) return;  // the first one stops the run
  Trace(fmt::format("VIOLATION {}: {}", name, what));
  std::string report = fmt::format(
      "seed {}: invariant '{}' broken: {}\nthe last events before it:\n", seed_, name, what);
  for (const std::string& line : recent_) report += "  " + line + "\n";
  report += fmt::format("replay it: fanout_sim --seed {} --steps {} --faults {} --trace\n", seed_,
                        options_.steps, options_.faults);
  result_.violations.push_back({name, what, std::move(report)});
}

JobTruth* World::Job(const std::string& id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

std::string World::AnyJob() {
  if (jobs_.empty()) return "";
  auto it = jobs_.begin();
  std::advance(it, static_cast<long>(rng_.Between(0, jobs_.size() - 1)));
  return it->first;
}

void World::Accepted(const std::string& id, const pb::JobSpec& spec, SimClient* client) {
  jobs_[id] = JobTruth{id, spec, client, false, std::nullopt};
  ++result_.jobs;
}

// ---- the network ---------------------------------------------------------------

Conn* World::Connect(void* owner, bool worker) {
  if (!coordinator_up()) return nullptr;
  const uint64_t id = next_conn_++;
  Conn& conn = conns_[id];
  conn.id = id;
  conn.peer = fmt::format("{}{}", worker ? "W" : "C", id);
  conn.worker = worker;
  conn.owner = owner;
  by_peer_[conn.peer] = id;
  return &conn;
}

void World::Close(Conn* conn) {
  if (conn == nullptr || !conn->open) return;
  conn->open = false;
  by_peer_.erase(conn->peer);
}

Duration World::Latency() {
  if (faulty_ && options_.faults >= 1 && rng_.Chance(0.03)) return rng_.Millis(5, 400);
  return rng_.Micros(30, 400);
}

void World::Send(Conn* conn, const pb::Envelope& env) {
  if (!conn->open) return;
  const TimePoint at = std::max(now_ + Latency(), conn->up_tail);
  conn->up_tail = at;
  const uint64_t id = conn->id;
  At(at, [this, id, env] {
    auto it = conns_.find(id);
    if (it == conns_.end() || !it->second.open || !coordinator_up()) return;
    inbox_.push_back({it->second.peer, it->second.worker, env, false});
    ScheduleTurn();
  });
}

void World::ReplyFromLedger(const pb::Envelope& reply) {
  const uint64_t incarnation = incarnation_;
  At(now_ + Latency(), [this, incarnation, reply] {
    if (!coordinator_up() || incarnation != incarnation_) return;
    inbox_.push_back({"", false, reply, true});
    ScheduleTurn();
  });
}

// ---- the coordinator -----------------------------------------------------------

void World::StartCoordinator() {
  ++incarnation_;
  Result<std::unique_ptr<coordinator::Journal>> journal = coordinator::Journal::Open(journal_path_);
  if (!journal) {
    Violate("harness", "cannot open the journal: " + journal.error().message);
    return;
  }
  journal_ = std::move(*journal);
  coordinator::SchedulerOptions o;
  o.heartbeat_interval = heartbeat();
  o.task_timeout = std::chrono::seconds(5);
  o.ledger = "tcp://ledger.sim:5557";
  o.unix_micros = [this] {
    return kUnixBase + std::chrono::duration_cast<microseconds>(now_ - start_).count();
  };
  const uint64_t incarnation = incarnation_;
  scheduler_ = std::make_unique<coordinator::Scheduler>(
      o, [this, incarnation] { return fmt::format("c{}-{}", incarnation, ++next_job_); },
      journal_.get());
  Result<std::vector<coordinator::JournaledJob>> unfinished = journal_->Unfinished();
  if (!unfinished) {
    Violate("harness", "cannot read the journal: " + unfinished.error().message);
    return;
  }
  for (const coordinator::JournaledJob& job : *unfinished) scheduler_->Restore(job, now_);
  Trace(fmt::format("coordinator starts (incarnation {}, {} jobs resumed)", incarnation_,
                    unfinished->size()));
  Turn();
}

void World::CrashCoordinator(bool after_commit) {
  if (!coordinator_up()) return;
  ++result_.coordinator_crashes;
  if (after_commit) {
    // It committed the turn and died before sending anything of it.
    Turn(/*send=*/false);
  }
  Trace(fmt::format("coordinator dies{}", after_commit ? " after a commit, before sending" : ""));
  scheduler_.reset();
  journal_.reset();
  inbox_.clear();
  blocked_.clear();
  turn_pending_ = false;
  wake_at_ = TimePoint::max();
  for (auto& [id, conn] : conns_) {
    if (!conn.open) continue;
    Close(&conn);
    if (!conn.worker) static_cast<SimClient*>(conn.owner)->ConnectionLost();
  }
  After(rng_.Millis(200, 2500), [this] {
    if (!coordinator_up()) StartCoordinator();
  });
}

void World::ScheduleTurn() {
  if (turn_pending_) return;
  turn_pending_ = true;
  // The loop wakes, reads everything that arrived meanwhile, then turns once.
  After(rng_.Micros(0, 300), [this] {
    turn_pending_ = false;
    Turn();
  });
}

void World::Turn(bool send) {
  if (!coordinator_up()) return;
  turns_at_instant_ = now_ == last_turn_ ? turns_at_instant_ + 1 : 0;
  last_turn_ = now_;
  if (turns_at_instant_ > 1000) {
    return Violate("no-spin", "the coordinator woke 1000 times at one instant with nothing to do");
  }
  std::deque<Inbound> batch;
  batch.swap(inbox_);
  for (Inbound& in : batch) {
    if (in.ledger && in.env.has_status_reply()) {
      scheduler_->OnLedgerAlive(now_);
    } else if (in.ledger) {
      scheduler_->OnLedgerReply(in.env.ledger_reply(), now_);
    } else if (in.worker) {
      scheduler_->OnWorkerMessage(in.peer, in.env, now_);
    } else {
      scheduler_->OnClientMessage(in.peer, in.env, now_);
    }
  }
  if (now_ >= scheduler_->NextWakeup(now_) - milliseconds(1)) scheduler_->Tick(now_);
  scheduler_->Dispatch(now_);
  if (Status s = journal_->Commit(); !s) Violate("harness", "journal: " + s.error().message);
  if (send) {
    Route();
  } else {
    scheduler_->to_workers().clear();
    scheduler_->to_clients().clear();
    scheduler_->to_ledger().clear();
  }
  ScheduleWake();
}

void World::ScheduleWake() {
  const TimePoint wake = scheduler_->NextWakeup(now_);
  if (wake >= wake_at_ && wake_at_ > now_) return;  // an earlier wake-up is already due
  wake_at_ = wake;
  const uint64_t incarnation = incarnation_;
  At(wake, [this, wake, incarnation] {
    if (incarnation != incarnation_ || wake_at_ != wake) return;
    wake_at_ = TimePoint::max();
    Turn();
  });
}

void World::Route() {
  for (coordinator::Outgoing& out : scheduler_->to_workers()) {
    if (out.envelope.has_task()) {
      const pb::Task& task = out.envelope.task();
      const std::string key = fmt::format("{}/{}", task.job_id(), task.index());
      if (!scheduler_->TakesTasks(out.peer)) {
        Violate("live-dispatch", fmt::format("task {} dispatched to {}, a worker declared dead or "
                                             "draining",
                                             key, out.peer));
      }
      if (task.has_transfer() && !ledger_.IsOpen(task.job_id())) {
        Violate("book-open", fmt::format("transfer {} dispatched before its book was open", key));
      }
      if (const JobTruth* truth = Job(task.job_id()); truth != nullptr && truth->ended) {
        Violate("ended-stays-ended", fmt::format("task {} dispatched after its job ended", key));
      }
    }
    auto it = by_peer_.find(out.peer);
    if (it == by_peer_.end()) continue;  // a connection that is gone: ZeroMQ drops it
    Conn& conn = conns_.at(it->second);
    const TimePoint at = std::max(now_ + Latency(), conn.down_tail);
    conn.down_tail = at;
    const uint64_t id = conn.id;
    At(at, [this, id, env = std::move(out.envelope)] {
      auto c = conns_.find(id);
      if (c == conns_.end() || !c->second.open) return;
      static_cast<SimWorker*>(c->second.owner)->OnMessage(env);
    });
  }
  scheduler_->to_workers().clear();
  for (coordinator::Outgoing& out : scheduler_->to_clients()) {
    auto it = by_peer_.find(out.peer);
    if (it == by_peer_.end()) continue;
    Conn& conn = conns_.at(it->second);
    const TimePoint at = std::max(now_ + Latency(), conn.down_tail);
    conn.down_tail = at;
    const uint64_t id = conn.id;
    At(at, [this, id, env = std::move(out.envelope)] {
      auto c = conns_.find(id);
      if (c == conns_.end() || !c->second.open) return;
      static_cast<SimClient*>(c->second.owner)->OnMessage(env);
    });
  }
  scheduler_->to_clients().clear();
  for (const pb::Envelope& env : scheduler_->to_ledger()) {
    if (env.has_status()) {  // a health ping: a ledger that is up answers
      After(Latency(), [this] {
        if (ledger_.down()) return;
        pb::Envelope pong = NewEnvelope();
        pong.mutable_status_reply()->set_service("ledger");
        ReplyFromLedger(pong);
      });
      continue;
    }
    const pb::LedgerRequest request = env.ledger_request();
    After(Latency(), [this, request] { ledger_.OnRequest(request); });
  }
  scheduler_->to_ledger().clear();
}

// ---- the population and its faults ---------------------------------------------

void World::NewClient() {
  if (!faulty_) return;
  size_t waiting = 0;
  for (const auto& c : clients_) waiting += c->waiting() ? 1 : 0;
  if (waiting < 8) {
    clients_.push_back(std::make_unique<SimClient>(*this, clients_.size() + 1, RandomSpec(rng_)));
    clients_.back()->Start();
  }
  After(rng_.Millis(100, 2500), [this] { NewClient(); });
}

void World::Chaos() {
  if (!faulty_) return;
  After(rng_.Millis(50, 700), [this] { Chaos(); });
  const int level = options_.faults;
  if (level == 0) return;
  const uint64_t roll = rng_.Between(0, 99);
  SimWorker& worker = *rng_.Pick(workers_);
  if (roll < 12) {
    ++result_.worker_crashes;
    worker.Crash();
    if (rng_.Chance(0.8))
      After(rng_.Millis(300, 5000), [&worker] {
        if (!worker.alive()) worker.Start();
      });
  } else if (roll < 18) {
    worker.Drain();
  } else if (roll < 22 && workers_.size() < 6) {
    workers_.push_back(std::make_unique<SimWorker>(*this, fmt::format("w{}", workers_.size() + 1),
                                                   rng_.Chance(0.5), Slots()));
    workers_.back()->Start();
  } else if (roll < 30 && !clients_.empty()) {
    SimClient& client = *rng_.Pick(clients_);
    if (rng_.Chance(0.5)) {
      client.Vanish();
    } else {
      client.Cancel();
    }
  } else if (roll < 36) {
    // Someone else follows a job (`fanout watch`) or, now and then, ends it
    // (`fanout cancel`, a process of its own).
    if (const std::string job = AnyJob(); !job.empty()) {
      const bool cancels = rng_.Chance(0.25);
      clients_.push_back(std::make_unique<SimClient>(*this, clients_.size() + 1, job, cancels));
      clients_.back()->Start();
    }
  } else if (level >= 2 && roll < 40) {
    CrashCoordinator(rng_.Chance(0.3));
  } else if (level >= 2 && roll < 50) {
    worker.Pause(rng_.Millis(300, 4000));
  } else if (level >= 2 && roll < 55) {
    ledger_.SetDown(true);
    Trace("ledger goes down");
    After(rng_.Millis(500, 8000), [this] {
      ledger_.SetDown(false);
      Trace("ledger is back");
    });
  } else if (level >= 2 && roll < 60 && coordinator_up() && !clients_.empty()) {
    // A client that reads slowly: its jobs pause until it catches up.
    SimClient& client = *rng_.Pick(clients_);
    for (const auto& [id, conn] : conns_) {
      if (conn.open && conn.owner == &client) {
        scheduler_->SetClientBlocked(conn.peer, true);
        blocked_.insert(conn.peer);
        const coordinator::PeerId peer = conn.peer;
        const uint64_t incarnation = incarnation_;
        After(rng_.Millis(100, 2000), [this, peer, incarnation] {
          if (incarnation != incarnation_ || !coordinator_up()) return;
          scheduler_->SetClientBlocked(peer, false);
          blocked_.erase(peer);
          ScheduleTurn();
        });
      }
    }
  } else if (level >= 3 && roll < 66) {
    worker.SendGarbageResults();
  }
}

void World::Calm() {
  faulty_ = false;
  Trace("the faults stop");
  ledger_.SetDown(false);
  if (coordinator_up()) {
    for (const coordinator::PeerId& peer : blocked_) scheduler_->SetClientBlocked(peer, false);
    blocked_.clear();
    ScheduleTurn();
  }
  bool exec = false;
  for (auto& w : workers_) {
    if (!w->alive()) w->Start();
    exec |= w->exec();
  }
  if (!exec) {
    workers_.push_back(
        std::make_unique<SimWorker>(*this, fmt::format("w{}", workers_.size() + 1), true, Slots()));
    workers_.back()->Start();
  }
  calm_until_ = now_ + kCalmBound;
}

bool World::AllEnded() const {
  for (const auto& c : clients_) {
    if (c->waiting()) return false;
  }
  return coordinator_up() && scheduler_->job_count() == 0;
}

uint32_t World::Slots() {
  // Half the workers share a few slots among all jobs (`worker --slots`).
  return rng_.Chance(0.5) ? static_cast<uint32_t>(rng_.Between(1, 4)) : 0;
}

SimResult World::Run() {
  StartCoordinator();
  const int n = static_cast<int>(rng_.Between(1, 4));
  for (int i = 1; i <= n; ++i) {
    workers_.push_back(
        std::make_unique<SimWorker>(*this, fmt::format("w{}", i), rng_.Chance(0.6), Slots()));
    workers_.back()->Start();
  }
  NewClient();
  Chaos();
  while (!queue_.empty() && result_.violations.empty()) {
    Event event = queue_.top();
    queue_.pop();
    now_ = event.at;
    event.fn();
    ++events_;
    if (faulty_ && events_ >= options_.steps) Calm();
    if (!faulty_ && (events_ & 63) == 0) {
      if (AllEnded()) break;
      if (now_ > calm_until_) {
        std::string stuck;
        for (const auto& c : clients_) {
          if (c->waiting()) stuck += fmt::format(" {}", c->job_id().empty() ? "?" : c->job_id());
        }
        Violate("ends", fmt::format("{:.0f} s after the faults stopped, jobs still running:{} ({} "
                                    "in the scheduler)",
                                    ToMillis(kCalmBound) / 1000, stuck,
                                    coordinator_up() ? scheduler_->job_count() : 0));
      }
    }
  }
  result_.events = events_;
  result_.trace_hash = hash_;
  return result_;
}

SimResult RunSeed(uint64_t seed, const SimOptions& options) {
  World world(seed, options);
  return world.Run();
}

}  // namespace fanout::sim
