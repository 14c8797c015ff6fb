#include "sim/actors.h"

#include <fmt/format.h>

#include "jobs/registry.h"

namespace fanout::sim {
namespace {

std::string Key(const TaskKey& k) { return fmt::format("{}/{}", k.first, k.second); }

int64_t Stamp(const World& world) {
  return std::chrono::duration_cast<microseconds>(world.now().time_since_epoch()).count();
}

}  // namespace

// ---- workers -------------------------------------------------------------------

SimWorker::SimWorker(World& world, std::string id, bool exec, uint32_t slots)
    : world_(world), id_(std::move(id)), exec_(exec), slots_(slots) {}

void SimWorker::Start() {
  ++life_;
  pid_ = static_cast<int64_t>(world_.rng().Between(100, 4'000'000));
  alive_ = true;
  draining_ = false;
  paused_until_ = {};
  running_.clear();
  unsent_.clear();
  conn_ = nullptr;
  backoff_ = milliseconds(250);
  world_.Trace(fmt::format("worker {} starts (pid {}{})", id_, pid_, exec_ ? ", runs exec" : ""));
  Connect();
  const uint64_t life = life_;
  world_.After(world_.heartbeat(), [this, life] { Beat(life); });
}

void SimWorker::Crash() {
  if (!alive_) return;
  world_.Trace(fmt::format("worker {} dies holding {} tasks", id_, running_.size()));
  if (conn_ != nullptr) world_.Close(conn_);
  conn_ = nullptr;
  alive_ = false;
  ++life_;
  running_.clear();
  unsent_.clear();
}

void SimWorker::Pause(Duration d) {
  if (!alive_) return;
  world_.Trace(fmt::format("worker {} stops for {:.0f} ms", id_, ToMillis(d)));
  paused_until_ = std::max(paused_until_, world_.now() + d);
}

void SimWorker::Drain() {
  if (!alive_ || draining_) return;
  // A stopped process handles the signal when it goes on.
  if (paused()) return WhenAwake([this] { Drain(); });
  world_.Trace(fmt::format("worker {} drains ({} tasks running)", id_, running_.size()));
  draining_ = true;
  pb::Envelope env = NewEnvelope();
  env.mutable_drain()->set_reason("signal");
  Send(env);
  Flush();
  ExitIfDrained();
}

void SimWorker::ExitIfDrained() {
  if (!draining_ || !running_.empty() || !unsent_.empty()) return;
  world_.Trace(fmt::format("worker {} drained: exits", id_));
  if (conn_ != nullptr) {
    pb::Envelope bye = NewEnvelope();
    bye.mutable_drain()->set_reason("drained");
    bye.mutable_drain()->set_leaving(true);
    Send(bye);
    world_.Close(conn_);
  }
  conn_ = nullptr;
  alive_ = false;
  ++life_;
  // Restarted by its supervisor (systemd, compose): later while faults
  // last, soon once they stop.
  world_.After(world_.faulty() ? world_.rng().Millis(500, 6000) : milliseconds(500), [this] {
    if (!alive_) Start();
  });
}

void SimWorker::WhenAwake(std::function<void()> fn) {
  if (!paused()) return fn();
  const uint64_t life = life_;
  world_.At(paused_until_, [this, life, fn = std::move(fn)] {
    if (life == life_ && alive_) WhenAwake(fn);
  });
}

void SimWorker::Connect() {
  if (conn_ != nullptr) world_.Close(conn_);
  conn_ = world_.Connect(this, /*worker=*/true);
  if (conn_ == nullptr) return Lost();
  heard_ = world_.now();
  pb::Envelope env = NewEnvelope();
  pb::Hello* hello = env.mutable_hello();
  hello->set_worker_id(id_);
  hello->set_host("sim");
  hello->set_pid(pid_);
  hello->set_concurrency(4);
  hello->set_cores(2);
  hello->set_slots(slots_);
  std::set<std::pair<TaskKey, uint32_t>> held;  // each attempt it runs or has not reported
  for (const auto& [key, run] : running_) held.insert(key);
  for (const auto& [key, result] : unsent_) held.insert({key, result.result().attempt()});
  for (const auto& [key, attempt] : held) {
    pb::TaskRef* ref = hello->add_holding();
    ref->set_job_id(key.first);
    ref->set_index(key.second);
    ref->set_attempt(attempt);
  }
  for (const auto& kind : jobs::Kinds().all()) {
    if (kind->name() != "exec" || exec_) hello->add_serves(std::string(kind->name()));
  }
  world_.Trace(fmt::format("worker {} says hello on {} holding {}", id_, conn_->peer, held.size()));
  Send(env);
  if (draining_) {
    pb::Envelope drain = NewEnvelope();
    drain.mutable_drain()->set_reason("draining");
    Send(drain);
  }
  Flush();
  ExitIfDrained();
}

void SimWorker::Lost() {
  if (conn_ != nullptr) world_.Close(conn_);
  conn_ = nullptr;
  const uint64_t life = life_;
  world_.After(backoff_, [this, life] {
    if (life == life_ && alive_ && conn_ == nullptr) WhenAwake([this] { Connect(); });
  });
  backoff_ = std::min<Duration>(backoff_ * 2, milliseconds(8000));
}

void SimWorker::Beat(uint64_t life) {
  if (life != life_ || !alive_) return;
  WhenAwake([this, life] {
    if (life != life_ || !alive_) return;
    if (conn_ != nullptr) {
      if (world_.now() - heard_ > 3 * world_.heartbeat()) {
        world_.Trace(fmt::format("worker {} hears nothing: reconnects", id_));
        Lost();
      } else {
        pb::Envelope env = NewEnvelope();
        env.mutable_heartbeat()->set_sent_us(Stamp(world_));
        Send(env);
      }
    }
    world_.After(world_.heartbeat(), [this, life] { Beat(life); });
  });
}

void SimWorker::OnMessage(const pb::Envelope& env) {
  if (!alive_) return;
  if (paused()) {
    // Read when it goes on, if it still has this connection: what came on
    // a socket it has since closed is gone with it.
    const uint64_t life = life_;
    const Conn* conn = conn_;
    world_.At(paused_until_, [this, life, conn, env] {
      if (life == life_ && conn == conn_) OnMessage(env);
    });
    return;
  }
  heard_ = world_.now();
  backoff_ = milliseconds(250);
  if (env.has_task()) {
    OnTask(env.task());
  } else if (env.has_stop()) {
    OnStop(env.stop().job_id());
  } else if (env.has_error() && env.error().code() == pb::Error::UNKNOWN_PEER) {
    world_.Trace(fmt::format("worker {} is unknown to the coordinator: hello again", id_));
    Connect();
  }
}

void SimWorker::OnTask(const pb::Task& task) {
  const TaskKey key{task.job_id(), task.index()};
  world_.Trace(fmt::format("worker {} gets {} attempt {}", id_, Key(key), task.attempt()));
  if (task.has_exec() && !exec_) {
    world_.Violate("routing", fmt::format("exec task {} sent to worker {}, which does not run exec",
                                          Key(key), id_));
  }
  if (draining_) {
    pb::Envelope env = NewEnvelope();
    pb::TaskReturned* back = env.mutable_returned();
    back->set_job_id(task.job_id());
    back->set_index(task.index());
    back->set_attempt(task.attempt());
    back->set_reason("draining");
    Send(env);
    return;
  }
  if (slots_ > 0 && running_.size() >= slots_) {
    world_.Violate("slots", fmt::format("worker {} got {} while running {} tasks with {} slots",
                                        id_, Key(key), running_.size(), slots_));
  }
  uint32_t holding = 0;
  for (const auto& [k, run] : running_) holding += k.first.first == task.job_id() ? 1 : 0;
  if (holding >= task.concurrency()) {
    world_.Violate("credit",
                   fmt::format("worker {} got {} while holding {} tasks of job {} with "
                               "credit {}",
                               id_, Key(key), holding, task.job_id(), task.concurrency()));
  }
  Rng& rng = world_.rng();
  // Most tasks are quick; a few get stuck well past the job's deadline.
  Duration takes = rng.Millis(5, 400);
  if (world_.faulty() && rng.Chance(0.02)) takes = rng.Millis(6'000, 20'000);
  const uint64_t run = ++next_run_;
  running_[{key, task.attempt()}] = {task.attempt(), run, task.has_transfer()};
  const uint64_t life = life_;
  world_.After(takes, [this, key, run, life] { Finish(key, run, life); });
}

void SimWorker::OnStop(const std::string& job) {
  std::vector<std::pair<TaskKey, uint64_t>> stopping;
  for (const auto& [k, run] : running_) {
    if (k.first.first == job) stopping.emplace_back(k.first, run.run);
  }
  world_.Trace(fmt::format("worker {} stops {} tasks of {}", id_, stopping.size(), job));
  // Each reports at once, as stopped: nothing of it runs on here.
  for (auto& [key, run] : stopping) {
    for (auto it = running_.begin(); it != running_.end(); ++it) {
      if (it->first.first != key || it->second.run != run) continue;
      const uint32_t attempt = it->second.attempt;
      running_.erase(it);
      pb::Envelope env = NewEnvelope();
      pb::Result* r = env.mutable_result();
      r->set_job_id(key.first);
      r->set_index(key.second);
      r->set_attempt(attempt);
      r->set_error("stopped: the job has ended");
      r->set_worker_id(id_);
      SendResult(key, env);
      break;
    }
  }
}

void SimWorker::Finish(TaskKey key, uint64_t run, uint64_t life) {
  if (life != life_ || !alive_) return;
  if (paused()) {
    return WhenAwake([this, key, run, life] { Finish(key, run, life); });
  }
  auto it = running_.begin();
  for (; it != running_.end(); ++it) {
    if (it->first.first == key && it->second.run == run) break;
  }
  if (it == running_.end()) return;
  // A bank task moves its money before it reports; the ledger may be down
  // (a real worker re-sends for 30 s) or refuse (its job has ended).
  const SimLedger::Applied applied =
      it->second.bank ? world_.ledger().Apply(key.first, key.second) : SimLedger::Applied::kDone;
  if (applied == SimLedger::Applied::kDown) {
    world_.After(milliseconds(1000), [this, key, run, life] { Finish(key, run, life); });
    return;
  }
  const uint32_t attempt = it->second.attempt;
  running_.erase(it);
  pb::Envelope env = NewEnvelope();
  pb::Result* r = env.mutable_result();
  r->set_job_id(key.first);
  r->set_index(key.second);
  r->set_attempt(attempt);
  r->set_ok(applied == SimLedger::Applied::kDone);
  if (r->ok()) {
    r->set_number(key.second);
  } else {
    r->set_error("the book is closed: its job has ended");
  }
  r->set_worker_id(id_);
  r->set_started_us(Stamp(world_) - 1000);
  r->set_finished_us(Stamp(world_));
  world_.Trace(fmt::format("worker {} finishes {} attempt {}", id_, Key(key), attempt));
  SendResult(key, env);
  // Now and then a result is sent twice (a worker resending what it was unsure of).
  if (world_.faulty() && world_.options().faults >= 2 && world_.rng().Chance(0.03)) {
    world_.Trace(fmt::format("worker {} sends {} twice", id_, Key(key)));
    SendResult(key, env);
  }
}

void SimWorker::SendResult(const TaskKey& key, pb::Envelope env) {
  unsent_.emplace_back(key, std::move(env));
  Flush();
  ExitIfDrained();
}

void SimWorker::Flush() {
  while (conn_ != nullptr && conn_->open && !unsent_.empty()) {
    Send(unsent_.front().second);
    unsent_.pop_front();
  }
}

void SimWorker::Send(const pb::Envelope& env) {
  if (conn_ != nullptr) world_.Send(conn_, env);
}

void SimWorker::SendGarbageResults() {
  if (!alive_ || conn_ == nullptr) return;
  world_.Trace(fmt::format("worker {} sends garbage results", id_));
  auto result = [&](const std::string& job, uint32_t index, uint32_t attempt) {
    pb::Envelope env = NewEnvelope();
    pb::Result* r = env.mutable_result();
    r->set_job_id(job);
    r->set_index(index);
    r->set_attempt(attempt);
    r->set_ok(true);
    r->set_worker_id(id_);
    Send(env);
  };
  result("no-such-job", 1, 1);
  if (const std::string job = world_.AnyJob(); !job.empty()) {
    result(job, 0, 1);
    result(job, 1'000'000, 1);
  }
}

// ---- clients -------------------------------------------------------------------

SimClient::SimClient(World& world, uint64_t number, pb::JobSpec spec)
    : world_(world),
      number_(number),
      name_(fmt::format("client-{}", number)),
      spec_(std::move(spec)),
      count_(spec_.count()) {}

SimClient::SimClient(World& world, uint64_t number, std::string job_id, bool cancels)
    : world_(world),
      number_(number),
      name_(fmt::format("{}-{}", cancels ? "canceller" : "watcher", number)),
      job_id_(std::move(job_id)),
      watching_(true),
      cancels_(cancels) {
  if (const JobTruth* truth = world_.Job(job_id_)) {
    spec_ = truth->spec;
    count_ = spec_.count();
    results_.resize(count_);
  }
}

void SimClient::Start() {
  submitted_ = heard_ = world_.now();
  conn_ = world_.Connect(this, /*worker=*/false);
  if (conn_ == nullptr) world_.After(milliseconds(200), [this] { Reconnect(); });
  pb::Envelope env = NewEnvelope();
  if (cancels_) {
    Cancel();
  } else if (watching_) {
    env.mutable_watch()->set_job_id(job_id_);
    world_.Trace(fmt::format("{} watches {}", name_, job_id_));
  } else {
    *env.mutable_submit()->mutable_spec() = spec_;
    world_.Trace(fmt::format("{} submits {} x {}", name_, spec_.count(), jobs::KindName(spec_)));
  }
  if (!cancels_) Send(env);
  world_.After(world_.heartbeat(), [this] { Beat(); });
}

void SimClient::Vanish() {
  if (!alive_) return;
  world_.Trace(fmt::format("{} vanishes", name_));
  alive_ = false;
  if (conn_ != nullptr) world_.Close(conn_);
  conn_ = nullptr;
}

void SimClient::Cancel() {
  if (!alive_ || job_id_.empty() || done_) return;
  if (watching_ && !cancels_) return Vanish();  // Ctrl-C on `fanout watch`: the job goes on
  world_.Trace(fmt::format("{} cancels {}", name_, job_id_));
  pb::Envelope env = NewEnvelope();
  env.mutable_cancel()->set_job_id(job_id_);
  if (watching_) {  // `fanout cancel` from another terminal says who it is
    env.mutable_cancel()->mutable_by()->set_host("sim");
    env.mutable_cancel()->mutable_by()->set_pid(static_cast<int64_t>(number_));
    env.mutable_cancel()->set_reason("a test");
  }
  Send(env);
}

void SimClient::ConnectionLost() {
  conn_ = nullptr;
  world_.After(world_.rng().Millis(100, 300), [this] { Reconnect(); });
}

void SimClient::Reconnect() {
  if (!alive_ || conn_ != nullptr) return;
  conn_ = world_.Connect(this, /*worker=*/false);
  if (conn_ == nullptr) {
    world_.After(milliseconds(200), [this] { Reconnect(); });
    return;
  }
  while (!queued_.empty()) {
    world_.Send(conn_, queued_.front());
    queued_.pop_front();
  }
}

void SimClient::Send(const pb::Envelope& env) {
  if (conn_ != nullptr && conn_->open) {
    world_.Send(conn_, env);
  } else {
    queued_.push_back(env);
  }
}

void SimClient::Beat() {
  if (!alive_ || done_ || gave_up_) return;
  const TimePoint now = world_.now();
  pb::Envelope hb = NewEnvelope();
  hb.mutable_heartbeat();
  Send(hb);
  if (job_id_.empty()) {
    if (now - submitted_ > milliseconds(3000)) {  // --connect-timeout-ms
      world_.Trace(fmt::format("{} heard no answer to its submit: gives up", name_));
      gave_up_ = true;
      return;
    }
  } else if (cancels_ && now - heard_ > 3 * world_.heartbeat() && now >= next_watch_) {
    Cancel();  // as `fanout cancel` does when the coordinator falls silent
    next_watch_ = now + 2 * world_.heartbeat();
  } else if (now - heard_ > 3 * world_.heartbeat() && now >= next_watch_) {
    pb::Envelope watch = NewEnvelope();
    watch.mutable_watch()->set_job_id(job_id_);
    watch.mutable_watch()->set_owner(!watching_);  // the submitter takes its job back
    Send(watch);
    next_watch_ = now + 2 * world_.heartbeat();
  }
  if (now - heard_ > milliseconds(30'000)) {
    world_.Trace(fmt::format("{} heard nothing for 30 s: gives up on {}", name_, job_id_));
    gave_up_ = true;
    return;
  }
  world_.After(world_.heartbeat(), [this] { Beat(); });
}

void SimClient::OnMessage(const pb::Envelope& env) {
  if (!alive_) return;
  heard_ = world_.now();
  switch (env.body_case()) {
    case pb::Envelope::kAccepted:
      if (job_id_.empty()) {
        job_id_ = env.accepted().job_id();
        count_ = env.accepted().tasks();
        results_.resize(count_);
        world_.Accepted(job_id_, spec_, this);
        world_.Trace(fmt::format("{} is told its job is {}", name_, job_id_));
        if (spec_.detached()) {  // `submit --detach`: prints the id and exits
          done_ = true;
          Vanish();
        }
      }
      break;
    case pb::Envelope::kRejected:
      world_.Trace(fmt::format("{} is rejected: {}", name_, env.rejected().reason()));
      done_ = true;
      break;
    case pb::Envelope::kEvents:
      OnEvents(env.events());
      break;
    case pb::Envelope::kJobDone:
      OnDone(env.job_done());
      break;
    case pb::Envelope::kError:
      if (env.error().code() == pb::Error::UNKNOWN_JOB && !job_id_.empty()) {
        world_.Violate("accepted-kept", fmt::format("{} was told its job {} is unknown: {}", name_,
                                                    job_id_, env.error().message()));
      }
      if (cancels_ && env.error().code() == pb::Error::BAD_REQUEST) {
        world_.Trace(fmt::format("{} is told: {}", name_, env.error().message()));
        done_ = true;  // "job ... has already ended": `fanout cancel` says so and exits
      }
      break;
    default:
      break;
  }
}

void SimClient::OnEvents(const pb::TaskEvents& events) {
  if (events.job_id() != job_id_ || done_) return;
  for (const pb::TaskEvent& event : events.events()) {
    if (event.type() != pb::TaskEvent::DONE) continue;
    if (event.index() == 0 || event.index() > count_) {
      world_.Violate("exactly-once", fmt::format("{} got a result for task {} of {}, which has {}",
                                                 name_, event.index(), job_id_, count_));
      continue;
    }
    pb::Result& heard = results_[event.index() - 1];
    const pb::Result& r = event.result();
    if (heard.index() == 0) {
      heard = r;
      heard.set_index(event.index());
      continue;
    }
    if (!events.replay()) {
      world_.Violate("exactly-once",
                     fmt::format("{} heard task {}/{} twice (attempts {} and {})", name_, job_id_,
                                 event.index(), heard.attempt(), r.attempt()));
    } else if (heard.attempt() != r.attempt() || heard.ok() != r.ok()) {
      world_.Violate("exactly-once",
                     fmt::format("{}: the replay of {}/{} says attempt {} ok={}, it heard attempt "
                                 "{} ok={}",
                                 name_, job_id_, event.index(), r.attempt(), r.ok(),
                                 heard.attempt(), heard.ok()));
    }
  }
}

void SimClient::OnDone(const pb::JobDone& done) {
  if (done.job_id() != job_id_ || done_) return;
  done_ = true;
  world_.Trace(fmt::format("{} gets job {} done: {} ok {} failed{}{}", name_, job_id_, done.ok(),
                           done.failed(), done.reason().empty() ? "" : ": ", done.reason()));
  if (JobTruth* truth = world_.Job(job_id_)) truth->ended = true;
  if (done.tasks() != count_) {
    world_.Violate("complete", fmt::format("job {} ended with {} tasks; it has {}", job_id_,
                                           done.tasks(), count_));
  }
  if (done.reason() == "the client went away" && !gave_up_ && !watching_) {
    world_.Violate("client-kept", fmt::format("{} was still there, yet its job {} was cancelled "
                                              "as gone",
                                              name_, job_id_));
  }
  // Ended early, some results may be missing; `fanout cancel` hears only the end.
  if (!done.reason().empty() || cancels_) return;
  uint32_t heard = 0;
  for (const pb::Result& r : results_) heard += r.index() != 0 ? 1 : 0;
  if (heard != count_ || done.ok() + done.failed() != count_) {
    world_.Violate("complete", fmt::format("job {} ended with {} of {} results heard and {} + {} "
                                           "counted",
                                           job_id_, heard, count_, done.ok(), done.failed()));
  }
}

}  // namespace fanout::sim
