// The Scheduler's side that faces clients: submitting, following (owners and
// watchers), cancelling, listing jobs and the cluster, and what each job's
// followers hear. scheduler.cc has workers, dispatch and time.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "client/report.h"
#include "common/transport.h"
#include "coordinator/scheduler.h"
#include "jobs/registry.h"

namespace fanout::coordinator {
namespace {

// Replayed results go out in envelopes of at most this many events.
constexpr int kReplayChunk = 1000;

}  // namespace

void Scheduler::OnClientMessage(const PeerId& peer, const pb::Envelope& env, TimePoint now) {
  auto client = clients_.find(peer);
  if (client != clients_.end()) client->second.liveness.Heard(now);
  switch (env.body_case()) {
    case pb::Envelope::kSubmit:
      OnSubmit(peer, env.submit(), now);
      return;
    case pb::Envelope::kCancel:
      OnCancel(peer, env.cancel(), now);
      return;
    case pb::Envelope::kStatus:
      OnStatus(peer, now);
      return;
    case pb::Envelope::kJobs:
      OnJobs(peer, env.jobs(), now);
      return;
    case pb::Envelope::kWatch:
      OnWatch(peer, env.watch(), now);
      return;
    case pb::Envelope::kHeartbeat:
      return;
    case pb::Envelope::kHello:
      Reply(to_clients_, peer, pb::Error::WRONG_SERVICE,
            "this is the coordinator's clients endpoint: workers connect to its workers endpoint "
            "(--workers-endpoint, port 5555 by default)");
      return;
    default:
      Reply(to_clients_, peer, pb::Error::BAD_REQUEST,
            fmt::format("a client cannot send '{}'", BodyName(env)));
  }
}

// ---- submitting ------------------------------------------------------------------

void Scheduler::OnSubmit(const PeerId& peer, const pb::Submit& submit, TimePoint now) {
  const pb::JobSpec& spec = submit.spec();
  if (Status valid = jobs::ValidateSpec(spec); !valid) return Reject(peer, valid.error().message);
  if (!stopping_.empty()) return Reject(peer, stopping_, /*unavailable=*/true);
  if (journal_ != nullptr && !journal_->broken().empty()) {
    return Reject(peer, fmt::format("the coordinator cannot record jobs: {}", journal_->broken()),
                  /*unavailable=*/true);
  }
  const jobs::JobKind& kind = *jobs::Kinds().For(spec);
  if (kind.needs_ledger() && options_.ledger.empty()) {
    return Reject(peer, fmt::format("this coordinator has no ledger for {} jobs (start it with "
                                    "--ledger)",
                                    kind.name()));
  }
  const std::string id = new_job_id_();
  Job& job = AddJob(id, spec, now);
  job.dispatched_events = !submit.results_only();
  // A detached job has no client to follow it: it runs on its own.
  if (!spec.detached()) Follow(job, peer, /*owner=*/true, now);
  ++stats_.jobs_accepted;
  if (journal_ != nullptr) journal_->Accepted(id, peer, spec, job.accepted_us);
  spdlog::info(
      "job {} accepted from {}: {} x {} under {} (concurrency {}, workers {}, priority "
      "{}{})",
      id, OriginName(spec.origin()), spec.count(), kind.name(), ModelName(spec.model()),
      spec.concurrency() > 0 ? fmt::to_string(spec.concurrency()) : "default",
      spec.max_workers() > 0 ? fmt::to_string(spec.max_workers()) : "all", job.priority,
      spec.detached() ? ", detached" : "");

  pb::Envelope env = NewEnvelope();
  pb::Accepted* accepted = env.mutable_accepted();
  accepted->set_job_id(id);
  accepted->set_tasks(spec.count());
  accepted->set_accepted_us(job.accepted_us);
  to_clients_.push_back({peer, std::move(env)});

  if (kind.needs_ledger()) OpenOnLedger(job, now);
}

void Scheduler::Reject(const PeerId& peer, const std::string& why, bool unavailable) {
  spdlog::info("job from client {} rejected: {}", PrintablePeer(peer), why);
  pb::Envelope env = NewEnvelope();
  env.mutable_rejected()->set_reason(why);
  env.mutable_rejected()->set_unavailable(unavailable);
  to_clients_.push_back({peer, std::move(env)});
}

void Scheduler::Restore(const JournaledJob& journaled, TimePoint now) {
  Job& job = AddJob(journaled.id, journaled.spec, now);
  job.accepted_us = journaled.accepted_us;
  job.accepted_at -=
      microseconds(std::max<int64_t>(0, options_.unix_micros() - journaled.accepted_us));
  for (const pb::Result& result : journaled.results) {
    if (result.index() == 0 || result.index() > job.slots.size()) continue;
    TaskSlot& slot = job.slots[result.index() - 1];
    if (slot.state == TaskState::kDone) continue;
    SetState(job, slot, TaskState::kDone);
    slot.attempts = static_cast<uint8_t>(std::min<uint32_t>(result.attempt(), 255));
    result.ok() ? ++job.ok : ++job.failed;
    if (!result.worker_id().empty()) job.used.insert(result.worker_id());
  }
  // A job with a client waits for it: if it does not come back (Watch) within
  // the client liveness, the job ends without running anything more.
  if (!journaled.spec.detached()) {
    job.awaiting_owner = true;
    job.owner_due = now + options_.heartbeat_interval * options_.client_liveness;
  }
  ++stats_.jobs_accepted;
  spdlog::info("job {} resumed from the journal: {} of {} tasks had finished{}", job.id,
               job.ok + job.failed, job.slots.size(),
               job.awaiting_owner ? "; it runs again when its client is back" : "");
  if (job.kind->needs_ledger()) {
    OpenOnLedger(job, now);  // it closes the job at once if every task had finished
  } else if (job.ok + job.failed == job.slots.size()) {
    FinishJob(job.id, "", now);
  }
}

void Scheduler::RememberEnded(const pb::JobInfo& info) {
  ended_.push_front(info);
  while (ended_.size() > options_.remember_ended) ended_.pop_back();
}

void Scheduler::StopAccepting(std::string reason) { stopping_ = std::move(reason); }

void Scheduler::EndAll(const std::string& reason, TimePoint now) {
  std::vector<std::string> ids;
  for (const auto& [id, job] : jobs_) ids.push_back(id);
  for (const std::string& id : ids) {
    if (FindJob(id) != nullptr) FinishJob(id, reason, now);
  }
}

// ---- following -------------------------------------------------------------------

Scheduler::Client& Scheduler::ClientFor(const PeerId& peer, TimePoint now) {
  return clients_
      .try_emplace(
          peer,
          Client{Liveness(options_.heartbeat_interval, options_.client_liveness, now), {}, {}})
      .first->second;
}

void Scheduler::Follow(Job& job, const PeerId& peer, bool owner, TimePoint now) {
  Client& client = ClientFor(peer, now);
  job.followers.insert(peer);
  client.follows.insert(job.id);
  if (!owner || job.spec.detached()) return;
  // The owner on a new connection (after a restart, a dropped link) takes
  // its job back; the old connection is gone.
  if (!job.owner.empty() && job.owner != peer) Unfollow(job, job.owner);
  job.owner = peer;
  client.owns.insert(job.id);
  if (job.awaiting_owner) {
    job.awaiting_owner = false;
    spdlog::info("job {}: its client is back; it runs again", job.id);
  }
}

void Scheduler::Unfollow(Job& job, const PeerId& peer) {
  job.followers.erase(peer);
  if (job.owner == peer) job.owner.clear();
  auto client = clients_.find(peer);
  if (client == clients_.end()) return;
  client->second.owns.erase(job.id);
  client->second.follows.erase(job.id);
  if (client->second.owns.empty() && client->second.follows.empty()) clients_.erase(client);
}

void Scheduler::StopFollowing(const PeerId& peer, const std::string& job_id) {
  Job* job = FindJob(job_id);
  if (job == nullptr || job->owner == peer) return;
  FlushEvents(*job);  // what it was owed so far
  Unfollow(*job, peer);
}

void Scheduler::OnWatch(const PeerId& peer, const pb::Watch& watch, TimePoint now) {
  const std::string& job_id = watch.job_id();
  pb::Envelope env = NewEnvelope();
  pb::Accepted* accepted = env.mutable_accepted();
  accepted->set_job_id(job_id);
  if (Job* job = FindJob(job_id)) {
    // What this turn has for the job goes out first, to whoever followed
    // it: the replay below reads the journal, which already holds those
    // results, and must not be followed by them again.
    FlushEvents(*job);
    job->dispatched_events = true;  // a watcher may print each task's start
    Follow(*job, peer, watch.owner(), now);
    accepted->set_tasks(static_cast<uint32_t>(job->slots.size()));
    accepted->set_accepted_us(job->accepted_us);
    *accepted->mutable_spec() = job->spec;
    to_clients_.push_back({peer, std::move(env)});
    if (journal_ != nullptr) Replay(peer, job_id, journal_->Results(job_id));
    spdlog::info("job {}: client {} follows it{}", job_id, PrintablePeer(peer),
                 watch.owner() ? " again" : "");
    return;
  }
  std::optional<JournaledJob> ended = journal_ ? journal_->Ended(job_id) : std::nullopt;
  if (!ended) {
    Reply(to_clients_, peer, pb::Error::UNKNOWN_JOB,
          fmt::format("job {} is not known to this coordinator: it was lost (a coordinator "
                      "restarted without its journal?), or it ended before the results it keeps",
                      job_id));
    return;
  }
  accepted->set_tasks(ended->spec.count());
  accepted->set_accepted_us(ended->accepted_us);
  *accepted->mutable_spec() = ended->spec;
  accepted->set_ended(true);
  to_clients_.push_back({peer, std::move(env)});
  Replay(peer, job_id, ended->results);
  pb::Envelope done = NewEnvelope();
  *done.mutable_job_done() = *ended->done;
  to_clients_.push_back({peer, std::move(done)});
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

void Scheduler::SetClientBlocked(const PeerId& peer, bool blocked) {
  if (blocked) {
    if (blocked_clients_.insert(peer).second) {
      spdlog::info("client {} reads slowly: the jobs it owns wait for it", PrintablePeer(peer));
    }
    // A slow watcher does not hold a job up: it stops following, and asks
    // again (Watch, with a replay) once it has caught up and hears nothing.
    auto client = clients_.find(peer);
    if (client == clients_.end()) return;
    std::vector<std::string> watched;
    for (const std::string& id : client->second.follows) {
      if (!client->second.owns.contains(id)) watched.push_back(id);
    }
    for (const std::string& id : watched) {
      if (Job* job = FindJob(id)) Unfollow(*job, peer);
    }
  } else if (blocked_clients_.erase(peer) > 0) {
    spdlog::info("client {} caught up: its jobs go on", PrintablePeer(peer));
  }
}

pb::Result* Scheduler::AddEvent(Job& job, pb::TaskEvent::Type type, uint32_t index,
                                uint32_t attempt, const std::string& worker, pb::Result* result) {
  if (job.followers.empty()) return nullptr;  // nobody to tell (detached, or its client gone)
  if (!job.events.has_events()) {
    job.events = NewEnvelope();
    job.events.mutable_events()->set_job_id(job.id);
  }
  pb::TaskEvent* event = job.events.mutable_events()->add_events();
  event->set_type(type);
  event->set_index(index);
  event->set_attempt(attempt);
  event->set_worker(worker);
  if (result == nullptr) return nullptr;
  *event->mutable_result() = std::move(*result);
  return event->mutable_result();
}

void Scheduler::ToFollowers(const Job& job, pb::Envelope env) {
  // A copy for each follower but the last, which takes it: with one
  // follower (the usual), a turn's results are never copied here.
  size_t left = job.followers.size();
  for (const PeerId& peer : job.followers) {
    to_clients_.push_back({peer, --left == 0 ? std::move(env) : env});
  }
}

void Scheduler::FlushEvents(Job& job) {
  if (!job.events.has_events()) return;
  ToFollowers(job, std::exchange(job.events, pb::Envelope()));
}

std::vector<Outgoing>& Scheduler::to_clients() {
  for (auto& [id, job] : jobs_) FlushEvents(job);
  return to_clients_;
}

// ---- cancelling ------------------------------------------------------------------

void Scheduler::OnCancel(const PeerId& peer, const pb::Cancel& cancel, TimePoint now) {
  const std::string& job_id = cancel.job_id();
  Job* job = FindJob(job_id);
  if (job == nullptr) {
    const bool ended = journal_ != nullptr && journal_->Ended(job_id).has_value();
    Reply(to_clients_, peer, ended ? pb::Error::BAD_REQUEST : pb::Error::UNKNOWN_JOB,
          ended ? fmt::format("job {} has already ended", job_id)
                : fmt::format("no job {} on this coordinator", job_id));
    return;
  }
  // Its own client's Ctrl-C, or anyone's `fanout cancel`.
  std::string why = cancel.has_by() ? fmt::format("cancelled by {}", OriginName(cancel.by()))
                                    : std::string("cancelled by the client");
  if (!cancel.reason().empty()) why += ": " + cancel.reason();
  // The canceller is told at once, then hears the job end as its other
  // followers do (a bank job reads its book back first). One that did not
  // follow it (`fanout cancel`, or its owner back after a coordinator
  // restart, before it asked to follow again) gets the results so far too,
  // as a Watch would: the end may be a normal one, with every result.
  if (job->owner != peer) {
    const bool following = job->followers.contains(peer);
    FlushEvents(*job);
    pb::Envelope env = NewEnvelope();
    env.mutable_accepted()->set_job_id(job_id);
    env.mutable_accepted()->set_tasks(static_cast<uint32_t>(job->slots.size()));
    env.mutable_accepted()->set_accepted_us(job->accepted_us);
    to_clients_.push_back({peer, std::move(env)});
    Follow(*job, peer, /*owner=*/false, now);
    if (!following && journal_ != nullptr) Replay(peer, job_id, journal_->Results(job_id));
  }
  CancelJob(job_id, why, now);
}

bool Scheduler::CancelJob(const std::string& id, const std::string& why, TimePoint now) {
  Job* job = FindJob(id);
  if (job == nullptr) return false;
  // Said once: a cancel that comes again, or while the job already ends, is quiet.
  if (job->phase != Job::Phase::kClosing) spdlog::info("job {} {}", id, why);
  FinishJob(id, why, now);
  return true;
}

// ---- listing -------------------------------------------------------------------

pb::JobInfo Scheduler::Info(const Job& job, TimePoint now) const {
  (void)now;
  pb::JobInfo info;
  info.set_job_id(job.id);
  info.set_kind(std::string(job.kind->name()));
  info.set_model(job.spec.model());
  info.set_state(job.started || job.ok + job.failed > 0 ? "running" : "queued");
  info.set_tasks(static_cast<uint32_t>(job.slots.size()));
  info.set_ok(job.ok);
  info.set_failed(job.failed);
  info.set_running(job.running);
  std::set<std::string> workers(job.used.begin(), job.used.end());
  for (const auto& [peer, w] : workers_) {
    if (w.load.contains(job.id)) workers.insert(w.hello.worker_id());
  }
  info.set_workers(static_cast<uint32_t>(workers.size()));
  info.set_accepted_us(job.accepted_us);
  info.set_priority(job.priority);
  info.set_detached(job.spec.detached());
  *info.mutable_origin() = job.spec.origin();
  return info;
}

pb::JobInfo Scheduler::EndedInfo(const pb::JobSpec& spec, const pb::JobDone& done,
                                 int64_t accepted_us, int64_t ended_us) {
  pb::JobInfo info;
  info.set_job_id(done.job_id());
  info.set_kind(std::string(jobs::KindName(spec)));
  info.set_model(spec.model());
  const std::string& reason = done.reason();
  info.set_state(client::EndedState(done));
  info.set_tasks(done.tasks());
  info.set_ok(done.ok());
  info.set_failed(done.failed());
  info.set_workers(done.workers_used());
  info.set_accepted_us(accepted_us);
  info.set_ended_us(ended_us);
  info.set_priority(spec.has_priority() ? spec.priority() : jobs::kDefaultPriority);
  info.set_detached(spec.detached());
  *info.mutable_origin() = spec.origin();
  info.set_reason(reason);
  return info;
}

pb::JobsReply Scheduler::JobsNow(bool all, TimePoint now) const {
  pb::JobsReply reply;
  std::vector<const Job*> running;
  for (const auto& [id, job] : jobs_) running.push_back(&job);
  std::sort(running.begin(), running.end(),
            [](const Job* a, const Job* b) { return a->seq < b->seq; });
  for (const Job* job : running) *reply.add_jobs() = Info(*job, now);
  if (all) {
    for (const pb::JobInfo& info : ended_) *reply.add_jobs() = info;
  }
  return reply;
}

void Scheduler::OnJobs(const PeerId& peer, const pb::JobsRequest& request, TimePoint now) {
  pb::Envelope env = NewEnvelope();
  *env.mutable_jobs_reply() = JobsNow(request.all(), now);
  to_clients_.push_back({peer, std::move(env)});
}

void Scheduler::OnStatus(const PeerId& peer, TimePoint now) {
  pb::Envelope env = NewEnvelope();
  *env.mutable_status_reply() = StatusNow(now);
  to_clients_.push_back({peer, std::move(env)});
}

pb::StatusReply Scheduler::StatusNow(TimePoint now) const {
  pb::StatusReply status;
  pb::StatusReply* reply = &status;
  reply->set_service("coordinator");
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
    *out->mutable_functions() = w->hello.functions();
    out->set_slots(w->slots);
    out->set_done(w->done);
    out->set_failed(w->failed);
    out->set_heard_ms_ago(
        std::chrono::duration_cast<milliseconds>(w->liveness.Silence(now)).count());
  }
  uint64_t queued = 0;
  for (const auto& [id, job] : jobs_) {
    queued += job.slots.size() - job.ok - job.failed - job.running;
  }
  reply->set_jobs(static_cast<uint32_t>(jobs_.size()));
  reply->set_tasks_queued(queued);
  // Results per second over the last ten whole seconds.
  const int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  uint64_t finished = 0;
  for (int64_t s = second - 10; s < second; ++s) {
    if (s > second_ - static_cast<int64_t>(per_second_.size()) && s <= second_) {
      finished += per_second_[static_cast<size_t>(s) % per_second_.size()];
    }
  }
  reply->set_tasks_per_s(static_cast<double>(finished) / 10);
  reply->set_tasks_dispatched(stats_.dispatched);
  reply->set_tasks_requeued(stats_.requeued);
  reply->set_duplicates_dropped(stats_.duplicates_dropped);
  reply->set_workers_lost(stats_.workers_lost);
  reply->set_workers_left(stats_.workers_left);
  reply->set_keyed(keyed_);
  reply->set_refused(refused_);
  pb::StatusReply::Ledger* ledger = reply->mutable_ledger();
  ledger->set_endpoint(options_.ledger);
  ledger->set_answered_ms_ago(
      ledger_.heard() ? std::chrono::duration_cast<milliseconds>(now - *ledger_.heard()).count()
                      : -1);
  return status;
}

// ---- telling clients that their job waits -----------------------------------------

std::string Scheduler::WhyWaiting(const Job& job) const {
  if (job.phase == Job::Phase::kOpening) {
    return fmt::format("the ledger at {} has not answered yet (is it running?)",
                       ledger_.endpoint());
  }
  if (job.phase != Job::Phase::kRunning || job.ok + job.failed == job.slots.size()) return "";
  bool any = false, serving = false;
  for (const auto& [peer, w] : workers_) {
    any = true;
    if (!Serves(w, job)) continue;
    serving = true;
    if (!w.draining) return "";
  }
  if (!any) return "no worker is connected to the coordinator";
  if (!job.function.empty()) {
    return serving ? fmt::format("every worker that serves '{}' is draining", job.function)
                   : fmt::format("no connected worker serves '{}'", job.function);
  }
  if (serving) {
    return fmt::format("every worker that can run {} tasks is draining", job.kind->name());
  }
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
    ToFollowers(job, std::move(env));
    job.waiting_said = std::move(why);
  }
}

}  // namespace fanout::coordinator
