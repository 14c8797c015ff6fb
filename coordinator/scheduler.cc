#include "coordinator/scheduler.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/transport.h"
#include "jobs/registry.h"

namespace fanout::coordinator {
namespace {

// Replayed results go out in envelopes of at most this many events.
constexpr int kReplayChunk = 1000;

// The registry's index of a kind: its bit in a worker's `serves`.
uint64_t KindBit(const jobs::JobKind* kind) {
  const auto& all = jobs::Kinds().all();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].get() == kind) return uint64_t{1} << i;
  }
  return 0;
}

}  // namespace

Scheduler::Scheduler(SchedulerOptions options, std::function<std::string()> new_job_id,
                     Journal* journal)
    : options_(std::move(options)),
      new_job_id_(std::move(new_job_id)),
      journal_(journal),
      ledger_(options_.ledger),
      kind_env_{.ledger = options_.ledger} {}

// ---- workers -----------------------------------------------------------------

void Scheduler::OnWorkerMessage(const PeerId& peer, const pb::Envelope& env, TimePoint now) {
  if (env.has_hello()) {
    OnHello(peer, env.hello(), now);
    return;
  }
  Worker* worker = FindWorker(peer);
  if (worker != nullptr) worker->liveness.Heard(now);
  switch (env.body_case()) {
    case pb::Envelope::kHeartbeat:
      if (worker != nullptr) OnHeartbeat(*worker, env.heartbeat());
      break;
    case pb::Envelope::kResult:
      // A result is accepted from anyone: the task is done wherever it ran.
      OnResult(worker, env.result(), now);
      break;
    case pb::Envelope::kReturned:
      if (worker != nullptr) OnReturned(*worker, env.returned());
      break;
    case pb::Envelope::kDrain:
      if (worker != nullptr && !worker->draining) {
        worker->draining = true;
        spdlog::info("worker {} is draining ({}): no new tasks for it", worker->hello.worker_id(),
                     env.drain().reason());
      }
      break;
    case pb::Envelope::kError:
      spdlog::warn("worker {} reports an error: {}", PrintablePeer(peer), env.error().message());
      return;
    default:
      Reply(to_workers_, peer, pb::Error::BAD_REQUEST,
            fmt::format("a worker cannot send '{}'", BodyName(env)));
      return;
  }
  if (worker == nullptr) {
    // Restarted coordinator, or a worker we declared dead: it must say Hello.
    Reply(to_workers_, peer, pb::Error::UNKNOWN_PEER, "unknown worker: send Hello");
  }
}

void Scheduler::OnHello(const PeerId& peer, const pb::Hello& hello, TimePoint now) {
  if (hello.worker_id().empty()) {
    Reply(to_workers_, peer, pb::Error::BAD_REQUEST, "Hello needs a worker_id");
    return;
  }
  if (Worker* known = FindWorker(peer)) {
    known->hello = hello;
    known->serves = ServesMask(hello);
    known->liveness.Heard(now);
    return;
  }
  Worker fresh{.peer = peer,
               .hello = hello,
               .liveness = Liveness(options_.heartbeat_interval, options_.liveness, now),
               .seq = next_worker_seq_++,
               .draining = false,
               .serves = ServesMask(hello),
               .inflight = {},
               .load = {}};
  // The same process on a new connection keeps what it says it still holds;
  // anything else it had (a result lost with the old connection) runs again.
  for (auto it = workers_.begin(); it != workers_.end(); ++it) {
    const pb::Hello& old = it->second.hello;
    if (old.worker_id() == hello.worker_id() && old.pid() == hello.pid() &&
        old.host() == hello.host()) {
      Adopt(it->second, fresh, hello, now);
      fresh.seq = it->second.seq;
      workers_.erase(it);
      workers_.emplace(peer, std::move(fresh));
      return;
    }
  }
  // A worker we never met holding tasks: we are a restarted coordinator (or
  // one that declared it dead) and it is running tasks of jobs we know.
  // Pending ones stay its, not run twice; the others (finished meanwhile, or
  // running elsewhere) still hold its slots, so they count against its
  // credit until it reports them.
  for (const pb::TaskRef& ref : hello.holding()) {
    Job* job = FindJob(ref.job_id());
    if (job == nullptr || ref.index() == 0 || ref.index() > job->slots.size()) continue;
    TaskSlot& slot = job->slots[ref.index() - 1];
    if (slot.state == TaskState::kPending) {
      slot.state = TaskState::kRunning;
      slot.deadline = now + job->task_timeout;
      slot.attempts = std::max<uint8_t>(slot.attempts, 1);
    }
    Hold(fresh, TaskKey{job->id, ref.index()}, ref.attempt());
  }
  spdlog::info("worker {} joined from {} (pid {}, {} cores, {} threads by default, runs {}{})",
               hello.worker_id(), hello.host(), hello.pid(), hello.cores(), hello.concurrency(),
               hello.serves().empty() ? "math, web, bank"
                                      : fmt::format("{}", fmt::join(hello.serves(), ", ")),
               fresh.claims == 0 ? "" : fmt::format(", running {} tasks", fresh.claims));
  workers_.emplace(peer, std::move(fresh));
}

void Scheduler::Adopt(Worker& old, Worker& fresh, const pb::Hello& hello, TimePoint now) {
  for (const pb::TaskRef& ref : hello.holding()) {
    auto it = old.inflight.find(TaskKey{ref.job_id(), ref.index()});
    if (it == old.inflight.end()) continue;
    // The claims move: the task's holders stay as they are.
    const uint32_t n = static_cast<uint32_t>(it->second.size());
    std::vector<uint32_t>& attempts = fresh.inflight[it->first];
    attempts.insert(attempts.end(), it->second.begin(), it->second.end());
    fresh.load[it->first.job] += n;
    fresh.claims += n;
    old.inflight.erase(it);
  }
  const size_t lost = old.inflight.size();
  LetGo(old.inflight, hello.worker_id(), now);
  spdlog::info("worker {} reconnected holding {} tasks ({} others go back to the queue)",
               hello.worker_id(), fresh.claims, lost);
}

void Scheduler::OnHeartbeat(Worker& worker, const pb::Heartbeat& hb) {
  if (hb.echo_us() <= 0 || hb.echo_heard_us() <= 0 || hb.sent_us() <= 0) return;
  // t0: we sent, t1: it heard, t2: it replied, t3: we heard (NTP's four stamps).
  const int64_t t0 = hb.echo_us(), t1 = hb.echo_heard_us(), t2 = hb.sent_us();
  const int64_t t3 = options_.unix_micros();
  const int64_t delay = (t3 - t0) - (t2 - t1);
  if (delay < 0 || delay > worker.best_delay_us) return;
  worker.best_delay_us = delay;
  worker.clock_offset_us = ((t1 - t0) + (t2 - t3)) / 2;
}

bool Scheduler::TakesTasks(const PeerId& peer) const {
  auto it = workers_.find(peer);
  return it != workers_.end() && !it->second.draining;
}

int64_t Scheduler::ClockOffsetMicros(const PeerId& peer) const {
  auto it = workers_.find(peer);
  return it == workers_.end() ? 0 : it->second.clock_offset_us;
}

void Scheduler::OnResult(Worker* worker, const pb::Result& result, TimePoint now) {
  ++stats_.results;
  if (worker != nullptr) Release(*worker, result.job_id(), result.index(), result.attempt());
  Job* job = FindJob(result.job_id());
  if (job == nullptr || result.index() == 0 || result.index() > job->slots.size()) {
    ++stats_.duplicates_dropped;
    spdlog::debug("task {}/{}: result for no running job dropped", result.job_id(), result.index());
    return;
  }
  TaskSlot& slot = job->slots[result.index() - 1];
  if (slot.state == TaskState::kDone) {
    ++stats_.duplicates_dropped;
    spdlog::debug("task {}/{}: duplicate result (attempt {}) dropped", job->id, result.index(),
                  result.attempt());
    return;
  }
  slot.state = TaskState::kDone;
  result.ok() ? ++job->ok : ++job->failed;
  job->used.insert(result.worker_id());
  AddEvent(*job, pb::TaskEvent::DONE, result.index(), result.attempt(), result.worker_id(),
           &result);
  // The worker's stamps, moved onto our clock (in the event's own copy), so
  // that tasks from different hosts line up in a timeline.
  if (worker != nullptr && worker->clock_offset_us != 0 && result.started_us() > 0) {
    auto* events = job->events.mutable_events()->mutable_events();
    pb::Result* sent = events->Mutable(events->size() - 1)->mutable_result();
    sent->set_started_us(result.started_us() - worker->clock_offset_us);
    sent->set_finished_us(result.finished_us() - worker->clock_offset_us);
  }
  if (journal_ != nullptr) {
    const auto& events = job->events.events().events();
    journal_->Finished(events[events.size() - 1].result());
  }
  if (job->ok + job->failed == job->slots.size()) FinishJob(job->id, "", now);
}

void Scheduler::OnReturned(Worker& worker, const pb::TaskReturned& returned) {
  if (!Release(worker, returned.job_id(), returned.index(), returned.attempt())) return;
  Job* job = FindJob(returned.job_id());
  if (job == nullptr) return;
  TaskSlot& slot = job->slots[returned.index() - 1];
  if (slot.state == TaskState::kRunning && slot.holders == 0) {
    // Not run at all, so it does not count as an attempt.
    slot.state = TaskState::kPending;
    --slot.attempts;
    job->retry.push_front(returned.index());
    ++stats_.returned;
  }
}

void Scheduler::Hold(Worker& worker, const TaskKey& key, uint32_t attempt) {
  worker.inflight[key].push_back(attempt);
  ++worker.load[key.job];
  ++worker.claims;
  if (Job* job = FindJob(key.job)) ++job->slots[key.index - 1].holders;
}

bool Scheduler::Release(Worker& worker, const std::string& job_id, uint32_t index,
                        uint32_t attempt) {
  auto it = worker.inflight.find(TaskKey{job_id, index});
  if (it == worker.inflight.end()) return false;
  std::vector<uint32_t>& attempts = it->second;
  // A claim made from an older worker's Hello does not know its attempt:
  // any result of the task releases it.
  auto held = std::find(attempts.begin(), attempts.end(), attempt);
  if (held == attempts.end()) held = std::find(attempts.begin(), attempts.end(), 0u);
  if (held == attempts.end() && attempt == 0) held = attempts.begin();
  if (held == attempts.end()) return false;
  attempts.erase(held);
  if (attempts.empty()) worker.inflight.erase(it);
  auto load = worker.load.find(job_id);
  if (load != worker.load.end() && --load->second == 0) worker.load.erase(load);
  --worker.claims;
  if (Job* job = FindJob(job_id)) --job->slots[index - 1].holders;
  return true;
}

void Scheduler::DeclareDead(const PeerId& peer, TimePoint now) {
  auto it = workers_.find(peer);
  const Worker worker = std::move(it->second);
  workers_.erase(it);
  ++stats_.workers_lost;
  spdlog::warn("worker {} silent for {:.1f} s: presumed dead, {} tasks go back to the queue",
               worker.hello.worker_id(),
               std::chrono::duration<double>(worker.liveness.Silence(now)).count(), worker.claims);
  LetGo(worker.inflight, worker.hello.worker_id(), now);
}

void Scheduler::LetGo(const std::unordered_map<TaskKey, std::vector<uint32_t>, TaskKeyHash>& tasks,
                      const std::string& worker, TimePoint now) {
  for (const auto& [key, attempts] : tasks) {
    Job* job = FindJob(key.job);
    if (job == nullptr) continue;
    TaskSlot& slot = job->slots[key.index - 1];
    slot.holders -= static_cast<uint8_t>(attempts.size());
    if (slot.state == TaskState::kRunning && slot.holders == 0) {
      Requeue(*job, key.index, fmt::format("worker {} stopped answering", worker), now);
    }
  }
}

void Scheduler::Requeue(Job& job, uint32_t index, std::string fault, TimePoint now) {
  TaskSlot& slot = job.slots[index - 1];
  std::vector<std::string>& faults = job.faults[index];
  faults.push_back(std::move(fault));
  if (slot.attempts < job.max_attempts) {
    slot.state = TaskState::kPending;
    job.retry.push_front(index);
    ++stats_.requeued;
    spdlog::info("task {}/{}: back in the queue after attempt {}: {}", job.id, index, slot.attempts,
                 faults.back());
    return;
  }
  slot.state = TaskState::kDone;
  ++job.failed;
  pb::Result result;
  result.set_job_id(job.id);
  result.set_index(index);
  result.set_attempt(slot.attempts);
  result.set_ok(false);
  result.set_error(
      fmt::format("gave up after {} attempts: {}", slot.attempts, fmt::join(faults, "; ")));
  spdlog::warn("task {}/{}: {}", job.id, index, result.error());
  AddEvent(job, pb::TaskEvent::DONE, index, slot.attempts, "", &result);
  if (journal_ != nullptr) journal_->Finished(result);
  job.faults.erase(index);
  if (job.ok + job.failed == job.slots.size()) FinishJob(job.id, "", now);
}

void Scheduler::CheckDeadlines(TimePoint now) {
  struct Overdue {
    std::string job;
    uint32_t index;
    std::string worker;
  };
  std::vector<Overdue> overdue;
  for (const auto& [peer, worker] : workers_) {
    for (const auto& [key, claims] : worker.inflight) {
      const Job* job = FindJob(key.job);
      if (job == nullptr || job->task_timeout == Duration::zero()) continue;
      const TaskSlot& slot = job->slots[key.index - 1];
      if (slot.state == TaskState::kRunning && now >= slot.deadline) {
        overdue.push_back({key.job, key.index, worker.hello.worker_id()});
      }
    }
  }
  for (const Overdue& o : overdue) {
    Job* job = FindJob(o.job);  // an earlier one may have finished the job
    if (job == nullptr || job->slots[o.index - 1].state != TaskState::kRunning) continue;
    // The stuck worker keeps its claim (and its credit) until it answers or dies.
    Requeue(*job, o.index,
            fmt::format("worker {} ran past the {:.1f} s deadline", o.worker,
                        ToMillis(job->task_timeout) / 1000),
            now);
  }
}

// ---- dispatch ----------------------------------------------------------------

uint64_t Scheduler::ServesMask(const pb::Hello& hello) {
  uint64_t mask = 0;
  if (hello.serves().empty()) {  // a worker older than the field
    for (const char* name : {"math", "web", "bank"}) mask |= KindBit(jobs::Kinds().Find(name));
  }
  for (const std::string& name : hello.serves()) {
    if (const jobs::JobKind* kind = jobs::Kinds().Find(name)) mask |= KindBit(kind);
  }
  return mask;
}

uint32_t Scheduler::Capacity(const Worker& worker, const Job& job) const {
  switch (job.spec.model()) {
    case pb::THREADS:
      if (job.spec.concurrency() > 0) return job.spec.concurrency();
      return std::max<uint32_t>(1, worker.hello.concurrency());
    case pb::ASYNC:
      return job.spec.concurrency() > 0 ? job.spec.concurrency() : options_.async_concurrency;
    default:
      return 1;
  }
}

uint32_t Scheduler::FreeCredit(const Worker& worker, const Job& job) const {
  if (worker.draining || (worker.serves & job.kind_bit) == 0) return 0;
  auto load = worker.load.find(job.id);
  const uint32_t used = load == worker.load.end() ? 0 : load->second;
  const uint32_t cap = Capacity(worker, job);
  return used >= cap ? 0 : cap - used;
}

void Scheduler::RefreshAssignment(Job& job) {
  const size_t cap = job.spec.max_workers();
  std::erase_if(job.assigned, [&](const PeerId& p) {
    const Worker* w = FindWorker(p);
    return w == nullptr || w->draining;
  });
  while (job.assigned.size() < cap) {
    const Worker* best = nullptr;
    for (const auto& [peer, w] : workers_) {
      if (w.draining || (w.serves & job.kind_bit) == 0 ||
          std::find(job.assigned.begin(), job.assigned.end(), peer) != job.assigned.end()) {
        continue;
      }
      if (best == nullptr || w.claims < best->claims ||
          (w.claims == best->claims && w.seq < best->seq)) {
        best = &w;
      }
    }
    if (best == nullptr) break;
    job.assigned.push_back(best->peer);
  }
}

Scheduler::Worker* Scheduler::PickWorker(Job& job) {
  Worker* best = nullptr;
  uint32_t best_free = 0;
  auto consider = [&](Worker& w) {
    const uint32_t free = FreeCredit(w, job);
    if (free > best_free || (free == best_free && free > 0 && w.seq < best->seq)) {
      best = &w;
      best_free = free;
    }
  };
  if (job.spec.max_workers() > 0) {
    for (const PeerId& peer : job.assigned) consider(workers_.at(peer));
  } else {
    for (auto& [peer, w] : workers_) consider(w);
  }
  return best;
}

bool Scheduler::HasPending(Job& job) {
  while (!job.retry.empty() && job.slots[job.retry.front() - 1].state != TaskState::kPending) {
    job.retry.pop_front();  // finished by a late result while it waited
  }
  while (job.next_fresh <= job.slots.size() &&
         job.slots[job.next_fresh - 1].state != TaskState::kPending) {
    ++job.next_fresh;  // finished before a restart, or claimed by a worker that held it
  }
  return !job.retry.empty() || job.next_fresh <= job.slots.size();
}

uint32_t Scheduler::PopPending(Job& job) {
  if (!job.retry.empty()) {
    const uint32_t index = job.retry.front();
    job.retry.pop_front();
    return index;
  }
  return job.next_fresh++;
}

void Scheduler::Dispatch(TimePoint now) {
  for (auto& [id, job] : jobs_) {
    if (job.phase != Job::Phase::kRunning) continue;
    if (!blocked_clients_.empty() && blocked_clients_.contains(job.client)) continue;
    if (!HasPending(job)) continue;
    if (job.spec.max_workers() > 0) RefreshAssignment(job);
    while (HasPending(job)) {
      Worker* worker = PickWorker(job);
      if (worker == nullptr) break;
      SendTask(job, *worker, PopPending(job), now);
    }
  }
}

void Scheduler::SendTask(Job& job, Worker& worker, uint32_t index, TimePoint now) {
  TaskSlot& slot = job.slots[index - 1];
  slot.state = TaskState::kRunning;
  slot.deadline = now + job.task_timeout;
  ++slot.attempts;
  const uint32_t capacity = Capacity(worker, job);
  job.capacity = std::max(job.capacity, capacity);
  Hold(worker, TaskKey{job.id, index}, slot.attempts);

  pb::Envelope env = NewEnvelope();
  pb::Task* task = env.mutable_task();
  task->set_job_id(job.id);
  task->set_index(index);
  task->set_attempt(slot.attempts);
  task->set_model(job.spec.model());
  task->set_concurrency(capacity);
  job.kind->FillTask(job.spec, index, kind_env_, task);
  to_workers_.push_back({worker.peer, std::move(env)});
  ++stats_.dispatched;
  spdlog::debug("task {}/{}: attempt {} to {}", job.id, index, slot.attempts,
                worker.hello.worker_id());
  AddEvent(job, pb::TaskEvent::DISPATCHED, index, slot.attempts, worker.hello.worker_id(), nullptr);
}

// ---- clients -----------------------------------------------------------------

void Scheduler::OnClientMessage(const PeerId& peer, const pb::Envelope& env, TimePoint now) {
  auto client = clients_.find(peer);
  if (client != clients_.end()) client->second.liveness.Heard(now);
  switch (env.body_case()) {
    case pb::Envelope::kSubmit:
      OnSubmit(peer, env.submit().spec(), now);
      return;
    case pb::Envelope::kCancel:
      OnCancel(peer, env.cancel().job_id(), now);
      return;
    case pb::Envelope::kStatus:
      OnStatus(peer);
      return;
    case pb::Envelope::kWatch:
      OnWatch(peer, env.watch().job_id(), now);
      return;
    case pb::Envelope::kHeartbeat:
      return;
    default:
      Reply(to_clients_, peer, pb::Error::BAD_REQUEST,
            fmt::format("a client cannot send '{}'", BodyName(env)));
  }
}

void Scheduler::OnSubmit(const PeerId& peer, const pb::JobSpec& spec, TimePoint now) {
  if (Status valid = jobs::ValidateSpec(spec); !valid) return Reject(peer, valid.error().message);
  if (!stopping_.empty()) return Reject(peer, stopping_);
  if (journal_ != nullptr && !journal_->broken().empty()) {
    return Reject(peer, fmt::format("the coordinator cannot record jobs: {}", journal_->broken()));
  }
  const jobs::JobKind& kind = *jobs::Kinds().For(spec);
  if (kind.needs_ledger() && options_.ledger.empty()) {
    return Reject(peer, fmt::format("this coordinator has no ledger for {} jobs (start it with "
                                    "--ledger)",
                                    kind.name()));
  }
  const std::string id = new_job_id_();
  Job& job = AddJob(id, spec, now);
  Follow(job, peer, now);
  ++stats_.jobs_accepted;
  if (journal_ != nullptr) journal_->Accepted(id, peer, spec, options_.unix_micros());
  spdlog::info("job {} accepted: {} x {} under {} (concurrency {}, workers {})", id, spec.count(),
               kind.name(), ModelName(spec.model()),
               spec.concurrency() > 0 ? fmt::to_string(spec.concurrency()) : "default",
               spec.max_workers() > 0 ? fmt::to_string(spec.max_workers()) : "all");

  pb::Envelope env = NewEnvelope();
  pb::Accepted* accepted = env.mutable_accepted();
  accepted->set_job_id(id);
  accepted->set_tasks(spec.count());
  accepted->set_accepted_us(options_.unix_micros());
  to_clients_.push_back({peer, std::move(env)});

  if (kind.needs_ledger()) OpenOnLedger(job, now);
}

void Scheduler::Reject(const PeerId& peer, const std::string& why) {
  spdlog::info("job from client {} rejected: {}", PrintablePeer(peer), why);
  pb::Envelope env = NewEnvelope();
  env.mutable_rejected()->set_reason(why);
  to_clients_.push_back({peer, std::move(env)});
}

Scheduler::Job& Scheduler::AddJob(const std::string& id, const pb::JobSpec& spec, TimePoint now) {
  Job& job = jobs_[id];
  job.id = id;
  job.spec = spec;
  job.kind = jobs::Kinds().For(spec);
  job.kind_bit = KindBit(job.kind);
  job.max_attempts = spec.max_attempts() > 0 ? spec.max_attempts() : options_.max_attempts;
  job.task_timeout = spec.task_timeout_ms() > 0
                         ? milliseconds(spec.task_timeout_ms())
                         : job.kind->TaskDeadline(spec).value_or(options_.task_timeout);
  job.accepted_at = now;
  job.stuck_since = now;
  job.slots.resize(spec.count());
  return job;
}

void Scheduler::OpenOnLedger(Job& job, TimePoint now) {
  job.phase = Job::Phase::kOpening;
  ledger_.Call(job.id, job.kind->OpenRequest(job.spec), now);
}

void Scheduler::OnLedgerReply(const pb::LedgerReply& reply, TimePoint now) {
  const std::optional<std::string> job_id = ledger_.OnReply(reply, now);
  if (!job_id) return;  // answered before, or "ask again" (re-sent later)
  Job* job = FindJob(*job_id);
  if (job == nullptr) return;
  if (job->phase == Job::Phase::kOpening) {
    if (!reply.ok()) {
      job->failed = static_cast<uint32_t>(job->slots.size()) - job->ok;
      CompleteJob(job->id,
                  fmt::format("the ledger could not open the job's book: {}", reply.error()), now,
                  nullptr);
      return;
    }
    job->phase = Job::Phase::kRunning;
    spdlog::info("job {}: open on the ledger", job->id);
    // A resumed job whose tasks had all finished: straight to closing.
    if (job->ok + job->failed == job->slots.size()) FinishJob(job->id, "", now);
  } else if (job->phase == Job::Phase::kClosing) {
    CompleteJob(job->id, job->end_reason, now, &reply);
  }
}

void Scheduler::LedgerGaveUp(const std::string& id, TimePoint now) {
  Job* job = FindJob(id);
  if (job == nullptr) return;
  if (job->phase == Job::Phase::kOpening) {
    job->failed = static_cast<uint32_t>(job->slots.size()) - job->ok;
    CompleteJob(id, ledger_.GiveUpReason(), now, nullptr);
  } else if (job->phase == Job::Phase::kClosing) {
    pb::LedgerReply failed;
    failed.set_error(ledger_.GiveUpReason());
    CompleteJob(id, job->end_reason, now, &failed);
  }
}

void Scheduler::OnCancel(const PeerId& peer, const std::string& job_id, TimePoint now) {
  const Job* job = FindJob(job_id);
  if (job == nullptr || job->client != peer) {
    Reply(to_clients_, peer, pb::Error::BAD_REQUEST,
          fmt::format("no running job '{}' of yours to cancel", job_id));
    return;
  }
  spdlog::info("job {} cancelled by its client", job_id);
  FinishJob(job_id, "cancelled by the client", now);
}

void Scheduler::OnStatus(const PeerId& peer) {
  pb::Envelope env = NewEnvelope();
  pb::StatusReply* reply = env.mutable_status_reply();
  std::vector<const Worker*> sorted;
  for (const auto& [p, w] : workers_) sorted.push_back(&w);
  std::sort(sorted.begin(), sorted.end(),
            [](const Worker* a, const Worker* b) { return a->seq < b->seq; });
  for (const Worker* w : sorted) {
    pb::StatusReply::Worker* out = reply->add_workers();
    out->set_worker_id(w->hello.worker_id());
    out->set_host(w->hello.host());
    out->set_pid(w->hello.pid());
    out->set_concurrency(w->hello.concurrency());
    out->set_inflight(w->claims);
    out->set_draining(w->draining);
    for (const auto& kind : jobs::Kinds().all()) {
      if (w->serves & KindBit(kind.get())) out->add_serves(std::string(kind->name()));
    }
  }
  reply->set_jobs(static_cast<uint32_t>(jobs_.size()));
  reply->set_tasks_dispatched(stats_.dispatched);
  reply->set_tasks_requeued(stats_.requeued);
  reply->set_duplicates_dropped(stats_.duplicates_dropped);
  reply->set_workers_lost(stats_.workers_lost);
  to_clients_.push_back({peer, std::move(env)});
}

void Scheduler::OnWatch(const PeerId& peer, const std::string& job_id, TimePoint now) {
  if (Job* job = FindJob(job_id)) {
    // What this turn has for the job goes out first, to whoever followed
    // it: the replay below reads the journal, which already holds those
    // results, and must not be followed by them again.
    FlushEvents(*job);
    Follow(*job, peer, now);
    if (journal_ != nullptr) Replay(peer, job_id, journal_->Results(job_id));
    spdlog::info("job {}: client {} follows it again", job_id, PrintablePeer(peer));
    return;
  }
  std::optional<pb::JobDone> done = journal_ ? journal_->Done(job_id) : std::nullopt;
  if (!done) {
    Reply(to_clients_, peer, pb::Error::UNKNOWN_JOB,
          fmt::format("job {} is not known to this coordinator: it was lost (a coordinator "
                      "restarted without its journal?) or ended long ago",
                      job_id));
    return;
  }
  Replay(peer, job_id, journal_->Results(job_id));
  pb::Envelope env = NewEnvelope();
  *env.mutable_job_done() = std::move(*done);
  to_clients_.push_back({peer, std::move(env)});
}

void Scheduler::Replay(const PeerId& peer, const std::string& job_id,
                       const std::vector<pb::Result>& results) {
  pb::Envelope env;
  for (const pb::Result& result : results) {
    if (!env.has_events()) {
      env = NewEnvelope();
      env.mutable_events()->set_job_id(job_id);
      env.mutable_events()->set_replay(true);
    }
    pb::TaskEvent* event = env.mutable_events()->add_events();
    event->set_type(pb::TaskEvent::DONE);
    event->set_index(result.index());
    event->set_attempt(result.attempt());
    event->set_worker(result.worker_id());
    *event->mutable_result() = result;
    if (env.events().events_size() == kReplayChunk) to_clients_.push_back({peer, std::move(env)});
  }
  if (env.has_events()) to_clients_.push_back({peer, std::move(env)});
}

void Scheduler::Follow(Job& job, const PeerId& peer, TimePoint now) {
  if (auto old = clients_.find(job.client); old != clients_.end() && job.client != peer) {
    old->second.jobs.erase(job.id);
    if (old->second.jobs.empty()) clients_.erase(old);
  }
  job.client = peer;
  auto [client, fresh] = clients_.try_emplace(
      peer, Client{Liveness(options_.heartbeat_interval, options_.client_liveness, now), {}});
  client->second.jobs.insert(job.id);
}

void Scheduler::Restore(const JournaledJob& journaled, TimePoint now) {
  Job& job = AddJob(journaled.id, journaled.spec, now);
  job.accepted_at -=
      microseconds(std::max<int64_t>(0, options_.unix_micros() - journaled.accepted_us));
  for (const pb::Result& result : journaled.results) {
    if (result.index() == 0 || result.index() > job.slots.size()) continue;
    TaskSlot& slot = job.slots[result.index() - 1];
    if (slot.state == TaskState::kDone) continue;
    slot.state = TaskState::kDone;
    slot.attempts = static_cast<uint8_t>(std::min<uint32_t>(result.attempt(), 255));
    result.ok() ? ++job.ok : ++job.failed;
    if (!result.worker_id().empty()) job.used.insert(result.worker_id());
  }
  Follow(job, journaled.client, now);
  ++stats_.jobs_accepted;
  spdlog::info("job {} resumed from the journal: {} of {} tasks had finished", job.id,
               job.ok + job.failed, job.slots.size());
  if (job.kind->needs_ledger()) {
    OpenOnLedger(job, now);  // it closes the job at once if every task had finished
  } else if (job.ok + job.failed == job.slots.size()) {
    FinishJob(job.id, "", now);
  }
}

void Scheduler::StopAccepting(std::string reason) { stopping_ = std::move(reason); }

void Scheduler::SetClientBlocked(const PeerId& peer, bool blocked) {
  if (blocked) {
    if (blocked_clients_.insert(peer).second) {
      spdlog::info("client {} reads slowly: its jobs wait for it", PrintablePeer(peer));
    }
  } else if (blocked_clients_.erase(peer) > 0) {
    spdlog::info("client {} caught up: its jobs go on", PrintablePeer(peer));
  }
}

void Scheduler::EndAll(const std::string& reason, TimePoint now) {
  std::vector<std::string> ids;
  for (const auto& [id, job] : jobs_) ids.push_back(id);
  for (const std::string& id : ids) {
    if (FindJob(id) != nullptr) FinishJob(id, reason, now);
  }
}

void Scheduler::AddEvent(Job& job, pb::TaskEvent::Type type, uint32_t index, uint32_t attempt,
                         const std::string& worker, const pb::Result* result) {
  if (!job.events.has_events()) {
    job.events = NewEnvelope();
    job.events.mutable_events()->set_job_id(job.id);
  }
  pb::TaskEvent* event = job.events.mutable_events()->add_events();
  event->set_type(type);
  event->set_index(index);
  event->set_attempt(attempt);
  event->set_worker(worker);
  if (result != nullptr) *event->mutable_result() = *result;
}

void Scheduler::FlushEvents(Job& job) {
  if (!job.events.has_events()) return;
  to_clients_.push_back({job.client, std::move(job.events)});
  job.events = pb::Envelope();
}

std::vector<Outgoing>& Scheduler::to_clients() {
  for (auto& [id, job] : jobs_) FlushEvents(job);
  return to_clients_;
}

void Scheduler::FinishJob(const std::string& id, const std::string& reason, TimePoint now) {
  Job& job = jobs_.at(id);
  if (job.phase == Job::Phase::kClosing) return;  // already ending
  // A job the ledger opened is read back before it ends; one it never
  // opened (cancelled while opening) has nothing to read.
  if (job.kind->needs_ledger() && job.phase == Job::Phase::kRunning) {
    FlushEvents(job);
    job.phase = Job::Phase::kClosing;
    job.end_reason = reason;
    ledger_.Call(id, job.kind->CloseRequest(job.spec), now);
    return;
  }
  CompleteJob(id, reason, now, nullptr);
}

void Scheduler::CompleteJob(const std::string& id, const std::string& reason, TimePoint now,
                            const pb::LedgerReply* closed) {
  auto it = jobs_.find(id);
  Job& job = it->second;
  ledger_.Forget(id);
  FlushEvents(job);
  pb::Envelope env = NewEnvelope();
  pb::JobDone* done = env.mutable_job_done();
  done->set_job_id(id);
  done->set_tasks(static_cast<uint32_t>(job.slots.size()));
  done->set_ok(job.ok);
  done->set_failed(job.failed);
  done->set_workers_used(static_cast<uint32_t>(job.used.size()));
  done->set_wall_ms(ToMillis(now - job.accepted_at));
  done->set_reason(reason);
  done->set_concurrency(job.capacity);
  if (closed != nullptr) job.kind->Closed(job.spec, *closed, *done);
  if (journal_ != nullptr) journal_->Completed(*done, options_.unix_micros());
  to_clients_.push_back({job.client, std::move(env)});
  spdlog::info("job {} finished: {} ok, {} failed of {} in {:.1f} ms{}{}", id, job.ok, job.failed,
               job.slots.size(), done->wall_ms(), reason.empty() ? "" : ": ", reason);

  auto client = clients_.find(job.client);
  if (client != clients_.end()) {
    client->second.jobs.erase(id);
    if (client->second.jobs.empty()) clients_.erase(client);
  }
  ++stats_.jobs_finished;
  jobs_.erase(it);
}

// ---- time --------------------------------------------------------------------

void Scheduler::Tick(TimePoint now) {
  std::vector<PeerId> dead;
  for (auto& [peer, worker] : workers_) {
    if (worker.liveness.Expired(now)) {
      dead.push_back(peer);
    } else if (worker.liveness.HeartbeatDue(now)) {
      pb::Envelope env = NewEnvelope();
      env.mutable_heartbeat()->set_sent_us(options_.unix_micros());
      to_workers_.push_back({peer, std::move(env)});
      worker.liveness.Sent(now);
    }
  }
  for (const PeerId& peer : dead) DeclareDead(peer, now);
  CheckDeadlines(now);

  std::vector<std::string> abandoned;
  for (auto it = clients_.begin(); it != clients_.end();) {
    const PeerId& peer = it->first;
    Client& client = it->second;
    if (client.liveness.Expired(now)) {
      spdlog::warn("client {} silent for {:.1f} s: cancelling its {} jobs", PrintablePeer(peer),
                   std::chrono::duration<double>(client.liveness.Silence(now)).count(),
                   client.jobs.size());
      abandoned.insert(abandoned.end(), client.jobs.begin(), client.jobs.end());
      it = clients_.erase(it);  // gone; a Watch brings it back
      continue;
    }
    if (client.liveness.HeartbeatDue(now)) {
      pb::Envelope env = NewEnvelope();
      env.mutable_heartbeat();
      to_clients_.push_back({peer, std::move(env)});
      client.liveness.Sent(now);
    }
    ++it;
  }
  for (const std::string& id : abandoned) {
    if (FindJob(id) != nullptr) FinishJob(id, "the client went away", now);
  }
  for (const std::string& id : ledger_.Tick(now)) LedgerGaveUp(id, now);
  NoticeWaiting(now);
}

std::string Scheduler::WhyWaiting(const Job& job) const {
  if (job.phase == Job::Phase::kOpening) {
    return fmt::format("the ledger at {} has not answered yet (is it running?)",
                       ledger_.endpoint());
  }
  if (job.phase != Job::Phase::kRunning || job.ok + job.failed == job.slots.size()) return "";
  bool any = false, serving = false;
  for (const auto& [peer, w] : workers_) {
    any = true;
    if ((w.serves & job.kind_bit) == 0) continue;
    serving = true;
    if (!w.draining) return "";
  }
  if (!any) return "no worker is connected to the coordinator";
  if (serving)
    return fmt::format("every worker that can run {} tasks is draining", job.kind->name());
  const std::string_view hint = job.kind->WorkerHint();
  return fmt::format("no connected worker can run {} tasks{}{}", job.kind->name(),
                     hint.empty() ? "" : ": ", hint);
}

void Scheduler::NoticeWaiting(TimePoint now) {
  for (auto& [id, job] : jobs_) {
    if (job.phase == Job::Phase::kClosing) continue;
    std::string why = WhyWaiting(job);
    if (why.empty()) job.stuck_since = now;
    if (why == job.waiting_said ||
        (!why.empty() && now - job.stuck_since < options_.waiting_notice)) {
      continue;
    }
    if (!why.empty()) spdlog::info("job {} waits: {}", id, why);
    pb::Envelope env = NewEnvelope();
    env.mutable_waiting()->set_job_id(id);
    env.mutable_waiting()->set_reason(why);
    to_clients_.push_back({job.client, std::move(env)});
    job.waiting_said = std::move(why);
  }
}

TimePoint Scheduler::NextWakeup(TimePoint now) const {
  TimePoint next = std::min(now + options_.heartbeat_interval, ledger_.NextWakeup(now));
  for (const auto& [peer, worker] : workers_) next = std::min(next, worker.liveness.NextDeadline());
  for (const auto& [peer, client] : clients_) next = std::min(next, client.liveness.NextDeadline());
  return next;
}

// ---- helpers -----------------------------------------------------------------

Scheduler::Worker* Scheduler::FindWorker(const PeerId& peer) {
  auto it = workers_.find(peer);
  return it == workers_.end() ? nullptr : &it->second;
}

Scheduler::Job* Scheduler::FindJob(const std::string& id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

void Scheduler::Reply(std::vector<Outgoing>& box, const PeerId& peer, pb::Error::Code code,
                      std::string message) {
  pb::Envelope env = NewEnvelope();
  env.mutable_error()->set_code(code);
  env.mutable_error()->set_message(std::move(message));
  box.push_back({peer, std::move(env)});
}

}  // namespace fanout::coordinator
