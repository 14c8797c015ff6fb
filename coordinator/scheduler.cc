#include "coordinator/scheduler.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>

#include "client/report.h"
#include "common/transport.h"
#include "jobs/registry.h"

namespace fanout::coordinator {

uint64_t Scheduler::KindBit(const jobs::JobKind* kind) {
  const auto& all = jobs::Kinds().all();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].get() == kind) return uint64_t{1} << i;
  }
  return 0;
}

namespace {
// A job's kind as Telemetry's index: its bit's position.
size_t KindIndex(uint64_t kind_bit) {
  return std::min<size_t>(static_cast<size_t>(std::countr_zero(kind_bit)), Telemetry::kKinds - 1);
}
}  // namespace

void Scheduler::CountTask(const Job& job, bool ok, const pb::Result* result) {
  const size_t kind = KindIndex(job.kind_bit);
  const size_t model =
      std::clamp<size_t>(static_cast<size_t>(job.spec.model()), 1, Telemetry::kModels) - 1;
  const bool ran = result != nullptr && result->started_us() > 0 &&
                   result->finished_us() >= result->started_us();
  telemetry_.tasks.Count(
      kind, model, ok,
      ran ? static_cast<double>(result->finished_us() - result->started_us()) / 1e6 : -1);
}

void Scheduler::CountJob(const Job& job, const std::string& state) {
  ++telemetry_.jobs[KindIndex(job.kind_bit)][state == "done"     ? Telemetry::kJobDone
                                             : state == "failed" ? Telemetry::kJobFailed
                                                                 : Telemetry::kJobCancelled];
}

Scheduler::Scheduler(SchedulerOptions options, std::function<std::string()> new_job_id,
                     Journal* journal)
    : options_(std::move(options)),
      new_job_id_(std::move(new_job_id)),
      journal_(journal),
      ledger_(options_.ledger),
      kind_env_{.ledger = options_.ledger} {}

// ---- workers -----------------------------------------------------------------

void Scheduler::OnWorkerMessage(const PeerId& peer, pb::Envelope&& env, TimePoint now) {
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
      OnResult(worker, std::move(*env.mutable_result()), now);
      break;
    case pb::Envelope::kReturned:
      if (worker != nullptr) OnReturned(*worker, env.returned());
      break;
    case pb::Envelope::kDrain:
      if (worker != nullptr && env.drain().leaving()) {
        Forget(peer, now);
      } else if (worker != nullptr && !worker->draining) {
        worker->draining = true;
        spdlog::info("worker {} is draining ({}): no new tasks for it", worker->hello.worker_id(),
                     env.drain().reason());
      }
      break;
    case pb::Envelope::kError:
      spdlog::warn("worker {} reports an error: {}", PrintablePeer(peer), env.error().message());
      return;
    case pb::Envelope::kSubmit:
    case pb::Envelope::kStatus:
    case pb::Envelope::kJobs:
    case pb::Envelope::kWatch:
    case pb::Envelope::kCancel:
      Reply(to_workers_, peer, pb::Error::WRONG_SERVICE,
            "this is the coordinator's workers endpoint: clients connect to its clients endpoint "
            "(--clients-endpoint, port 5556 by default)");
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
    known->functions = {hello.functions().begin(), hello.functions().end()};
    known->slots = hello.slots();
    known->liveness.Heard(now);
    return;
  }
  Worker fresh{.peer = peer,
               .hello = hello,
               .liveness = Liveness(options_.heartbeat_interval, options_.liveness, now),
               .seq = next_worker_seq_++,
               .draining = false,
               .serves = ServesMask(hello),
               .functions = {hello.functions().begin(), hello.functions().end()},
               .slots = hello.slots(),
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
  // one that declared it dead) and it is still running them.
  for (const pb::TaskRef& ref : hello.holding()) HoldReported(fresh, ref, now);
  spdlog::info("worker {} joined from {} (pid {}, {} cores, {} threads by default, runs {}{}{})",
               hello.worker_id(), hello.host(), hello.pid(), hello.cores(), hello.concurrency(),
               hello.serves().empty() ? "math, web, bank"
                                      : fmt::format("{}", fmt::join(hello.serves(), ", ")),
               hello.functions().empty()
                   ? ""
                   : fmt::format(", functions {}", fmt::join(hello.functions(), ", ")),
               fresh.claims == 0 ? "" : fmt::format(", running {} tasks", fresh.claims));
  workers_.emplace(peer, std::move(fresh));
}

void Scheduler::Adopt(Worker& old, Worker& fresh, const pb::Hello& hello, TimePoint now) {
  for (const pb::TaskRef& ref : hello.holding()) {
    auto it = old.inflight.find(TaskKey{ref.job_id(), ref.index()});
    if (it == old.inflight.end()) {
      HoldReported(fresh, ref, now);
      continue;
    }
    // The claims move: the task's holders stay as they are.
    const uint32_t n = static_cast<uint32_t>(it->second.size());
    std::vector<uint32_t>& attempts = fresh.inflight[it->first];
    attempts.insert(attempts.end(), it->second.begin(), it->second.end());
    fresh.load[it->first.job] += n;
    fresh.claims += n;
    old.inflight.erase(it);
  }
  const size_t lost = old.inflight.size();
  LetGo(old.inflight, hello.worker_id(), /*ran=*/true, now);
  spdlog::info("worker {} reconnected holding {} tasks ({} others go back to the queue)",
               hello.worker_id(), fresh.claims, lost);
}

void Scheduler::HoldReported(Worker& worker, const pb::TaskRef& ref, TimePoint now) {
  if (ref.index() == 0) return;
  Job* job = FindJob(ref.job_id());
  if (job != nullptr && ref.index() > job->slots.size()) return;
  // Whatever it is, it takes one of the worker's slots until it reports.
  if (job == nullptr) {
    Hold(worker, TaskKey{ref.job_id(), ref.index()}, ref.attempt());
    SendStop(worker.peer, ref.job_id(), "the job has ended");
    return;
  }
  // Pending: it stays the worker's, not run twice. Otherwise (finished
  // meanwhile, or running elsewhere) its result will be a duplicate.
  TaskSlot& slot = job->slots[ref.index() - 1];
  if (slot.state == TaskState::kPending) {
    SetState(*job, slot, TaskState::kRunning);
    slot.deadline = now + job->task_timeout;
    slot.attempts = std::max<uint8_t>(slot.attempts, 1);
  }
  Hold(worker, TaskKey{job->id, ref.index()}, ref.attempt());
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

void Scheduler::OnResult(Worker* worker, pb::Result&& result, TimePoint now) {
  ++stats_.results;
  if (worker != nullptr) {
    Release(*worker, result.job_id(), result.index(), result.attempt());
    result.ok() ? ++worker->done : ++worker->failed;
  }
  // Results per second, for tasks/s in `fanout status`.
  const int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  for (; second_ < second; ++second_) per_second_[(second_ + 1) % per_second_.size()] = 0;
  ++per_second_[second % per_second_.size()];
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
  SetState(*job, slot, TaskState::kDone);
  result.ok() ? ++job->ok : ++job->failed;
  CountTask(*job, result.ok(), &result);
  job->used.insert(result.worker_id());
  // One copy of the result: the event's (for its followers) or, for a job
  // nobody follows, the one decoded.
  pb::Result* kept = AddEvent(*job, pb::TaskEvent::DONE, result.index(), result.attempt(),
                              result.worker_id(), &result);
  if (kept == nullptr) kept = &result;
  // The worker's stamps, moved onto our clock, so that tasks from different
  // hosts line up in a timeline.
  if (worker != nullptr && worker->clock_offset_us != 0 && kept->started_us() > 0) {
    kept->set_started_us(kept->started_us() - worker->clock_offset_us);
    kept->set_finished_us(kept->finished_us() - worker->clock_offset_us);
  }
  if (journal_ != nullptr) journal_->Finished(*kept);
  if (job->drawn) AddDrawn(*job, *kept);
  if (job->ok + job->failed == job->slots.size()) FinishJob(job->id, "", now);
}

void Scheduler::AddDrawn(Job& job, const pb::Result& r) {
  DrawnTask& t = job.drawn_ring[job.drawn_next];
  job.drawn_next = (job.drawn_next + 1) % job.drawn_ring.size();
  job.drawn_count = std::min(job.drawn_count + 1, job.drawn_ring.size());
  t.index = r.index();
  t.ok = r.ok();
  t.thread = r.thread();
  t.started_us = r.started_us();
  t.finished_us = r.finished_us();
  t.worker = r.worker_id();  // the slot's strings keep their capacity
  t.number.reset();
  t.label.clear();
  if (r.ok() && r.has_number()) {
    t.number = r.number();
  } else if (r.ok() && r.has_text()) {
    t.label.assign(r.text(), 0, kDrawnLabel);
  } else if (r.ok()) {
    t.label = client::FormatValue(r);
  } else {
    t.label.assign(r.error(), 0, kDrawnLabel);
  }
}

std::vector<DrawnTask> Scheduler::Job::TakeDrawnTasks() {
  std::vector<DrawnTask> out;
  out.reserve(drawn_count);
  const size_t n = drawn_ring.size();
  for (size_t i = 0; i < drawn_count; ++i)
    out.push_back(drawn_ring[(drawn_next + n - drawn_count + i) % n]);
  drawn_count = 0;
  return out;
}

bool Scheduler::Draw(const std::string& job_id, bool on) {
  Job* job = FindJob(job_id);
  if (job == nullptr) return false;
  if (on == job->drawn) return true;
  job->drawn = on;
  job->drawn_ring.clear();
  job->drawn_ring.shrink_to_fit();
  job->drawn_next = job->drawn_count = 0;
  if (!on) return true;
  job->drawn_ring.resize(kDrawnPerTake);
  if (journal_ == nullptr) return true;
  // What it finished before: the last the ring holds, oldest first.
  std::vector<pb::Result> before = journal_->LatestResults(job_id, kDrawnPerTake);
  for (auto r = before.rbegin(); r != before.rend(); ++r) AddDrawn(*job, *r);
  return true;
}

std::vector<Drawn> Scheduler::TakeDrawn() {
  std::vector<Drawn> out = std::exchange(drawn_ended_, {});
  for (auto& [id, job] : jobs_) {
    if (job.drawn && job.drawn_count > 0) out.push_back({id, job.TakeDrawnTasks(), false});
  }
  return out;
}

void Scheduler::OnReturned(Worker& worker, const pb::TaskReturned& returned) {
  if (!Release(worker, returned.job_id(), returned.index(), returned.attempt())) return;
  Job* job = FindJob(returned.job_id());
  if (job == nullptr) return;
  if (job->slots[returned.index() - 1].holders == 0) Unrun(*job, returned.index());
}

void Scheduler::Unrun(Job& job, uint32_t index) {
  TaskSlot& slot = job.slots[index - 1];
  if (slot.state != TaskState::kRunning) return;
  // Not run at all, so it does not count as an attempt.
  SetState(job, slot, TaskState::kPending);
  --slot.attempts;
  job.retry.push_front(index);
  ++stats_.returned;
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
  // One that drained and exited, its goodbye lost: it left.
  if (it->second.draining && it->second.claims == 0) {
    Forget(peer, now);
    return;
  }
  const Worker worker = std::move(it->second);
  workers_.erase(it);
  ++stats_.workers_lost;
  spdlog::warn("worker {} silent for {:.1f} s: presumed dead, {} tasks go back to the queue",
               worker.hello.worker_id(),
               std::chrono::duration<double>(worker.liveness.Silence(now)).count(), worker.claims);
  LetGo(worker.inflight, worker.hello.worker_id(), /*ran=*/true, now);
}

void Scheduler::Forget(const PeerId& peer, TimePoint now) {
  auto it = workers_.find(peer);
  const Worker worker = std::move(it->second);
  workers_.erase(it);
  ++stats_.workers_left;
  spdlog::info("worker {} left (drained)", worker.hello.worker_id());
  // It left once it had reported every task it ran and returned those sent
  // to it while it drained: a claim we still have is a task sent before its
  // Drain reached us, that it never read. It runs elsewhere as the same
  // attempt (were it a result lost on the way, the task runs again too).
  LetGo(worker.inflight, worker.hello.worker_id(), /*ran=*/false, now);
}

void Scheduler::LetGo(const std::unordered_map<TaskKey, std::vector<uint32_t>, TaskKeyHash>& tasks,
                      const std::string& worker, bool ran, TimePoint now) {
  for (const auto& [key, attempts] : tasks) {
    Job* job = FindJob(key.job);
    if (job == nullptr) continue;
    TaskSlot& slot = job->slots[key.index - 1];
    slot.holders -= static_cast<uint8_t>(attempts.size());
    if (slot.state != TaskState::kRunning || slot.holders > 0) continue;
    if (ran) {
      Requeue(*job, key.index, fmt::format("worker {} stopped answering", worker),
              Telemetry::kWorkerLost, now);
    } else {
      Unrun(*job, key.index);
    }
  }
}

void Scheduler::Requeue(Job& job, uint32_t index, std::string fault, Telemetry::Retry why,
                        TimePoint now) {
  TaskSlot& slot = job.slots[index - 1];
  std::vector<std::string>& faults = job.faults[index];
  faults.push_back(std::move(fault));
  if (slot.attempts < job.max_attempts) {
    SetState(job, slot, TaskState::kPending);
    slot.queued = now;
    ++telemetry_.retries[why];
    job.retry.push_front(index);
    ++stats_.requeued;
    spdlog::info("task {}/{}: back in the queue after attempt {}: {}", job.id, index, slot.attempts,
                 faults.back());
    return;
  }
  SetState(job, slot, TaskState::kDone);
  ++job.failed;
  CountTask(job, false, nullptr);
  pb::Result result;
  result.set_job_id(job.id);
  result.set_index(index);
  result.set_attempt(slot.attempts);
  result.set_ok(false);
  result.set_error(
      fmt::format("gave up after {} attempts: {}", slot.attempts, fmt::join(faults, "; ")));
  spdlog::warn("task {}/{}: {}", job.id, index, result.error());
  const pb::Result* kept = AddEvent(job, pb::TaskEvent::DONE, index, slot.attempts, "", &result);
  if (journal_ != nullptr) journal_->Finished(kept != nullptr ? *kept : result);
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
            Telemetry::kDeadline, now);
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

void Scheduler::SetState(Job& job, TaskSlot& slot, TaskState state) {
  if (slot.state == TaskState::kRunning) --job.running;
  if (state == TaskState::kRunning) ++job.running;
  slot.state = state;
}

uint32_t Scheduler::FreeCredit(const Worker& worker, const Job& job) const {
  if (worker.draining || !Serves(worker, job)) return 0;
  if (worker.slots > 0 && worker.claims >= worker.slots) return 0;
  auto load = worker.load.find(job.id);
  const uint32_t used = load == worker.load.end() ? 0 : load->second;
  const uint32_t cap = Capacity(worker, job);
  if (used >= cap) return 0;
  const uint32_t credit = cap - used;
  return worker.slots > 0 ? std::min(credit, worker.slots - worker.claims) : credit;
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
      if (w.draining || !Serves(w, job) ||
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
  runnable_.clear();
  for (auto& [id, job] : jobs_) {
    if (job.phase != Job::Phase::kRunning || job.awaiting_owner) continue;
    if (!blocked_clients_.empty() && blocked_clients_.contains(job.owner)) continue;
    if (!HasPending(job)) continue;
    if (job.spec.max_workers() > 0) RefreshAssignment(job);
    runnable_.push_back(&job);
  }
  if (runnable_.empty()) return;
  // The highest priority first; among equals, the job served longest ago.
  std::sort(runnable_.begin(), runnable_.end(), [](const Job* a, const Job* b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->served != b->served ? a->served < b->served : a->seq < b->seq;
  });
  // A priority's jobs take a task each in turn while any worker has room,
  // then the next priority down. Where no worker has a slot cap, every job
  // fills its own credit; where caps bind, this is what shares them.
  for (size_t begin = 0, end = 0; begin < runnable_.size(); begin = end) {
    while (end < runnable_.size() && runnable_[end]->priority == runnable_[begin]->priority) ++end;
    for (bool progress = true; progress;) {
      progress = false;
      for (size_t i = begin; i < end; ++i) {
        Job& job = *runnable_[i];
        if (!HasPending(job)) continue;
        Worker* worker = PickWorker(job);
        if (worker == nullptr) continue;
        SendTask(job, *worker, PopPending(job), now);
        job.served = ++served_;
        progress = true;
      }
    }
  }
}

void Scheduler::SendTask(Job& job, Worker& worker, uint32_t index, TimePoint now) {
  TaskSlot& slot = job.slots[index - 1];
  SetState(job, slot, TaskState::kRunning);
  job.started = true;
  const TimePoint queued = slot.queued == TimePoint{} ? job.accepted_at : slot.queued;
  telemetry_.queue_seconds.Observe(Telemetry::kQueueBounds,
                                   std::chrono::duration<double>(now - queued).count());
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
  if (job.dispatched_events) {
    AddEvent(job, pb::TaskEvent::DISPATCHED, index, slot.attempts, worker.hello.worker_id(),
             nullptr);
  }
}

// ---- jobs --------------------------------------------------------------------

Scheduler::Job& Scheduler::AddJob(const std::string& id, const pb::JobSpec& spec, TimePoint now) {
  Job& job = jobs_[id];
  job.id = id;
  job.seq = ++next_job_seq_;
  job.spec = spec;
  job.kind = jobs::Kinds().For(spec);
  job.kind_bit = KindBit(job.kind);
  job.function = std::string(job.kind->RoutingName(spec));
  job.priority = spec.has_priority() ? spec.priority() : jobs::kDefaultPriority;
  job.max_attempts = spec.max_attempts() > 0 ? spec.max_attempts() : options_.max_attempts;
  job.task_timeout = spec.task_timeout_ms() > 0
                         ? milliseconds(spec.task_timeout_ms())
                         : job.kind->TaskDeadline(spec).value_or(options_.task_timeout);
  job.accepted_at = now;
  job.accepted_us = options_.unix_micros();
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

void Scheduler::FinishJob(const std::string& id, const std::string& reason, TimePoint now) {
  Job& job = jobs_.at(id);
  job.awaiting_owner = false;                     // it ends whoever comes back
  if (job.phase == Job::Phase::kClosing) return;  // already ending
  // Nothing of it runs on from here (its closing read must be the last).
  StopTasks(job, reason.empty() ? "the job has ended" : reason);
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

void Scheduler::StopTasks(Job& job, const std::string& reason) {
  for (auto& [peer, worker] : workers_) {
    auto load = worker.load.find(job.id);
    if (load == worker.load.end()) continue;
    // Its claims stay until it reports each task stopped (or dies): a task
    // that cannot stop at once still takes one of its slots.
    spdlog::info("job {}: stopping its {} tasks on worker {}", job.id, load->second,
                 worker.hello.worker_id());
    SendStop(peer, job.id, reason);
  }
}

void Scheduler::SendStop(const PeerId& peer, const std::string& job_id, const std::string& reason) {
  pb::Envelope env = NewEnvelope();
  env.mutable_stop()->set_job_id(job_id);
  env.mutable_stop()->set_reason(reason);
  to_workers_.push_back({peer, std::move(env)});
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
  const int64_t ended_us = options_.unix_micros();
  if (journal_ != nullptr) journal_->Completed(*done, ended_us);
  ToFollowers(job, env);
  spdlog::info("job {} finished: {} ok, {} failed of {} in {:.1f} ms{}{}", id, job.ok, job.failed,
               job.slots.size(), done->wall_ms(), reason.empty() ? "" : ": ", reason);
  const pb::JobInfo ended = EndedInfo(job.spec, *done, job.accepted_us, ended_us);
  CountJob(job, ended.state());
  RememberEnded(ended);
  for (const PeerId& peer : std::set<PeerId>(job.followers)) Unfollow(job, peer);
  if (job.drawn) drawn_ended_.push_back({id, job.TakeDrawnTasks(), true});
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
  std::vector<std::pair<std::string, PeerId>> unfollowed;
  for (auto it = clients_.begin(); it != clients_.end();) {
    const PeerId& peer = it->first;
    Client& client = it->second;
    if (client.liveness.Expired(now)) {
      if (!client.owns.empty()) {
        spdlog::warn("client {} silent for {:.1f} s: cancelling its {} jobs", PrintablePeer(peer),
                     std::chrono::duration<double>(client.liveness.Silence(now)).count(),
                     client.owns.size());
      }
      // Its jobs end (it still hears it, if it is there at all); it stops
      // following the others.
      abandoned.insert(abandoned.end(), client.owns.begin(), client.owns.end());
      for (const std::string& job : client.follows) {
        if (!client.owns.contains(job)) unfollowed.emplace_back(job, peer);
      }
      client.follows.clear();
      client.owns.clear();
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
  // Jobs resumed after a restart whose client did not come back.
  for (const auto& [id, job] : jobs_) {
    if (job.awaiting_owner && now >= job.owner_due) abandoned.push_back(id);
  }
  for (const auto& [id, peer] : unfollowed) {
    if (Job* job = FindJob(id)) {
      job->followers.erase(peer);
      if (job->owner == peer) job->owner.clear();
    }
  }
  for (const std::string& id : abandoned) {
    if (FindJob(id) != nullptr) FinishJob(id, "the client went away", now);
  }
  for (const std::string& id : ledger_.Tick(now)) LedgerGaveUp(id, now);
  NoticeWaiting(now);
}

TimePoint Scheduler::NextWakeup(TimePoint now) const {
  TimePoint next = std::min(now + options_.heartbeat_interval, ledger_.NextWakeup(now));
  for (const auto& [peer, worker] : workers_) next = std::min(next, worker.liveness.NextDeadline());
  for (const auto& [peer, client] : clients_) next = std::min(next, client.liveness.NextDeadline());
  for (const auto& [id, job] : jobs_) {
    if (job.awaiting_owner) next = std::min(next, job.owner_due);
  }
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
