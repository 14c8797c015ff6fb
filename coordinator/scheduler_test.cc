#include "coordinator/scheduler.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace fanout::coordinator {
namespace {

using std::chrono::milliseconds;

class SchedulerTest : public testing::Test {
 protected:
  SchedulerTest()
      : journal_(std::move(*Journal::Open(":memory:"))),
        scheduler_(
            Options(), [this] { return "job-" + std::to_string(++jobs_); }, journal_.get()) {}

  static SchedulerOptions Options() {
    SchedulerOptions o;
    o.unix_micros = [] { return int64_t{1'000'000}; };
    return o;
  }

  void Hello(const PeerId& peer, uint32_t threads = 4, int64_t pid = 100,
             std::vector<std::string> serves = {}) {
    pb::Envelope env = NewEnvelope();
    env.mutable_hello()->set_worker_id(peer);
    env.mutable_hello()->set_host("host");
    env.mutable_hello()->set_pid(pid);
    env.mutable_hello()->set_concurrency(threads);
    for (std::string& kind : serves) env.mutable_hello()->add_serves(std::move(kind));
    scheduler_.OnWorkerMessage(peer, env, now_);
  }

  // The reasons `client` was told its job waits, in order ("" when it goes on).
  std::vector<std::string> Waiting(const PeerId& client) {
    Clients();
    std::vector<std::string> reasons;
    for (const Outgoing& o : client_log_) {
      if (o.peer == client && o.envelope.has_waiting())
        reasons.push_back(o.envelope.waiting().reason());
    }
    return reasons;
  }

  // The tasks `worker` runs, as the coordinator counts them (its claims).
  uint32_t InFlight(const PeerId& worker) {
    pb::Envelope status = NewEnvelope();
    status.mutable_status();
    scheduler_.OnClientMessage("status", status, now_);
    for (const Outgoing& o : Clients()) {
      if (!o.envelope.has_status_reply()) continue;
      for (const auto& w : o.envelope.status_reply().workers()) {
        if (w.worker_id() == worker) return w.inflight();
      }
    }
    return 0;
  }

  pb::JobSpec ExecSpec(uint32_t count) {
    pb::JobSpec spec;
    spec.set_model(pb::ASYNC);
    spec.set_count(count);
    spec.mutable_exec()->add_command("true");
    for (uint32_t i = 0; i < count; ++i) spec.mutable_exec()->add_items("x");
    return spec;
  }

  void Heartbeat(const PeerId& peer) {
    pb::Envelope env = NewEnvelope();
    env.mutable_heartbeat();
    scheduler_.OnWorkerMessage(peer, env, now_);
  }

  pb::JobSpec Spec(pb::Model model, uint32_t count, uint32_t concurrency = 0,
                   uint32_t max_workers = 0) {
    pb::JobSpec spec;
    spec.set_model(model);
    spec.set_count(count);
    spec.set_concurrency(concurrency);
    spec.set_max_workers(max_workers);
    spec.mutable_math()->set_start(1);
    spec.mutable_math()->set_iterations(10);
    return spec;
  }

  // Submits and returns the job id from the Accepted reply.
  std::string Submit(const PeerId& client, const pb::JobSpec& spec) {
    pb::Envelope env = NewEnvelope();
    *env.mutable_submit()->mutable_spec() = spec;
    scheduler_.OnClientMessage(client, env, now_);
    for (const Outgoing& out : Clients()) {
      if (out.peer == client && out.envelope.has_accepted())
        return out.envelope.accepted().job_id();
    }
    return "";
  }

  void Finish(const PeerId& worker, const pb::Task& task, bool ok = true) {
    pb::Envelope env = NewEnvelope();
    pb::Result* r = env.mutable_result();
    r->set_job_id(task.job_id());
    r->set_index(task.index());
    r->set_attempt(task.attempt());
    r->set_ok(ok);
    r->set_number(task.math().start() + 1000);
    r->set_worker_id(worker);
    scheduler_.OnWorkerMessage(worker, env, now_);
  }

  // Dispatches and returns the tasks sent, by worker.
  std::map<PeerId, std::vector<pb::Task>> Dispatch() {
    scheduler_.Dispatch(now_);
    std::map<PeerId, std::vector<pb::Task>> sent;
    for (const Outgoing& out : Workers()) {
      if (out.envelope.has_task()) sent[out.peer].push_back(out.envelope.task());
    }
    return sent;
  }

  // Takes everything queued for workers / clients so far, and remembers it.
  std::vector<Outgoing> Workers() {
    std::vector<Outgoing> out = std::move(scheduler_.to_workers());
    scheduler_.to_workers().clear();
    return out;
  }
  std::vector<Outgoing> Clients() {
    std::vector<Outgoing> out = std::move(scheduler_.to_clients());
    scheduler_.to_clients().clear();
    for (const Outgoing& o : out) client_log_.push_back(o);
    return out;
  }

  // DONE events and JobDone seen by `client` so far.
  std::vector<pb::TaskEvent> DoneEvents(const PeerId& client) {
    Clients();
    std::vector<pb::TaskEvent> done;
    for (const Outgoing& o : client_log_) {
      if (o.peer != client || !o.envelope.has_events()) continue;
      for (const auto& e : o.envelope.events().events()) {
        if (e.type() == pb::TaskEvent::DONE) done.push_back(e);
      }
    }
    return done;
  }
  const pb::JobDone* JobDone(const PeerId& client) {
    Clients();
    for (const Outgoing& o : client_log_) {
      if (o.peer == client && o.envelope.has_job_done()) return &o.envelope.job_done();
    }
    return nullptr;
  }

  void Advance(milliseconds d) { now_ += d; }

  TimePoint now_{};
  int jobs_ = 0;
  std::unique_ptr<Journal> journal_;
  Scheduler scheduler_;
  std::vector<Outgoing> client_log_;
};

TEST_F(SchedulerTest, ThreadsCreditIsTheWorkersPoolSize) {
  Hello("w1", /*threads=*/4);
  Submit("c1", Spec(pb::THREADS, 10));
  auto sent = Dispatch();
  ASSERT_EQ(sent["w1"].size(), 4u);
  EXPECT_TRUE(Dispatch().empty()) << "no credit left, nothing more may go out";

  Finish("w1", sent["w1"][0]);
  auto more = Dispatch();
  ASSERT_EQ(more["w1"].size(), 1u);
  EXPECT_EQ(more["w1"][0].index(), 5u);
  EXPECT_EQ(more["w1"][0].concurrency(), 4u);
}

TEST_F(SchedulerTest, JobConcurrencyOverridesWorkerDefault) {
  Hello("w1", /*threads=*/4);
  Submit("c1", Spec(pb::ASYNC, 100, /*concurrency=*/64));
  EXPECT_EQ(Dispatch()["w1"].size(), 64u);
}

TEST_F(SchedulerTest, SyncRunsOneTaskPerWorker) {
  Hello("w1");
  Hello("w2");
  Submit("c1", Spec(pb::SYNC, 5));
  auto sent = Dispatch();
  EXPECT_EQ(sent["w1"].size(), 1u);
  EXPECT_EQ(sent["w2"].size(), 1u);
}

TEST_F(SchedulerTest, MaxWorkersCapsHowManyWorkersAJobUses) {
  Hello("w1");
  Hello("w2");
  Hello("w3");
  Submit("c1", Spec(pb::SYNC, 9, 0, /*max_workers=*/2));
  auto sent = Dispatch();
  EXPECT_EQ(sent.size(), 2u);
  for (auto& [peer, tasks] : sent) EXPECT_EQ(tasks.size(), 1u) << peer;
}

TEST_F(SchedulerTest, MaxWorkersPrefersIdleWorkers) {
  Hello("w1");
  Hello("w2");
  Submit("c1", Spec(pb::SYNC, 1, 0, 1));
  EXPECT_EQ(Dispatch().begin()->first, "w1");
  Submit("c2", Spec(pb::SYNC, 1, 0, 1));
  EXPECT_EQ(Dispatch().begin()->first, "w2") << "w1 is busy, w2 idle";
}

TEST_F(SchedulerTest, SilentWorkerLosesItsTasksToAnother) {
  Hello("w1", 2);
  const std::string job = Submit("c1", Spec(pb::THREADS, 2));
  ASSERT_EQ(Dispatch()["w1"].size(), 2u);
  Hello("w2", 2);

  // w2 keeps talking, w1 falls silent for 3 heartbeat intervals.
  for (int i = 0; i < 4; ++i) {
    Advance(milliseconds(400));
    Heartbeat("w2");
    scheduler_.Tick(now_);
  }
  EXPECT_EQ(scheduler_.worker_count(), 1u);
  auto sent = Dispatch();
  ASSERT_EQ(sent["w2"].size(), 2u);
  EXPECT_EQ(sent["w2"][0].attempt(), 2u);
  EXPECT_EQ(sent["w2"][1].attempt(), 2u);
  EXPECT_EQ(scheduler_.stats().requeued, 2u);
}

TEST_F(SchedulerTest, WorkerIsNotDeadWithinThreeIntervals) {
  Hello("w1", 2);
  Submit("c1", Spec(pb::THREADS, 2));
  Dispatch();
  Advance(milliseconds(1499));
  scheduler_.Tick(now_);
  EXPECT_EQ(scheduler_.worker_count(), 1u);
  EXPECT_EQ(scheduler_.stats().requeued, 0u);
}

TEST_F(SchedulerTest, FirstResultWinsAndLateDuplicateIsDropped) {
  Hello("w1", 1);
  Submit("c1", Spec(pb::THREADS, 1));
  const pb::Task first = Dispatch()["w1"].at(0);
  Hello("w2", 1);
  Advance(milliseconds(1600));
  Heartbeat("w2");
  scheduler_.Tick(now_);  // w1 presumed dead
  const pb::Task second = Dispatch()["w2"].at(0);
  EXPECT_EQ(second.attempt(), 2u);

  Finish("w1", first);   // w1 was only slow: its result is the first, and wins
  Finish("w2", second);  // the re-run's result comes too late
  const auto done = DoneEvents("c1");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].worker(), "w1");
  EXPECT_EQ(scheduler_.stats().duplicates_dropped, 1u);
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->ok(), 1u);
}

TEST_F(SchedulerTest, GivesUpAfterMaxAttemptsNamingTheWorkers) {
  pb::JobSpec spec = Spec(pb::SYNC, 1);
  spec.set_max_attempts(2);
  Submit("c1", spec);
  for (const char* w : {"w1", "w2"}) {
    Hello(w);
    ASSERT_EQ(Dispatch()[w].size(), 1u);
    Advance(milliseconds(1600));
    scheduler_.Tick(now_);
  }
  const auto done = DoneEvents("c1");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_FALSE(done[0].result().ok());
  EXPECT_EQ(done[0].result().error(),
            "gave up after 2 attempts: worker w1 stopped answering; worker w2 stopped answering");
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->failed(), 1u);
}

TEST_F(SchedulerTest, ATaskPastItsDeadlineRunsElsewhereAndTheFirstResultWins) {
  Hello("w1");
  Hello("w2");
  pb::JobSpec spec = Spec(pb::SYNC, 1);
  spec.set_task_timeout_ms(2000);
  Submit("c1", spec);
  auto first = Dispatch();
  ASSERT_EQ(first.size(), 1u);
  const PeerId stuck = first.begin()->first;
  const PeerId other = stuck == "w1" ? "w2" : "w1";
  for (int i = 0; i < 4; ++i) {  // alive (heartbeats) but stuck on the task
    Advance(milliseconds(500));
    Heartbeat("w1");
    Heartbeat("w2");
    scheduler_.Tick(now_);
    if (i < 3) {
      EXPECT_TRUE(Dispatch().empty()) << "re-dispatched before the deadline";
    }
  }
  auto second = Dispatch();
  ASSERT_EQ(second[other].size(), 1u) << "not re-dispatched after 2 s";
  EXPECT_EQ(second[other][0].attempt(), 2u);
  Finish(stuck, first[stuck][0]);  // the stuck worker answers first after all
  Finish(other, second[other][0]);
  const auto done = DoneEvents("c1");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].worker(), stuck);
  EXPECT_EQ(scheduler_.stats().duplicates_dropped, 1u);
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->ok(), 1u);
}

TEST_F(SchedulerTest, AStuckTaskFailsAfterMaxAttemptsNamingEachAttempt) {
  Hello("w1", 1);
  Hello("w2", 1);
  pb::JobSpec spec = Spec(pb::SYNC, 1);
  spec.set_task_timeout_ms(1000);
  spec.set_max_attempts(2);
  Submit("c1", spec);
  std::vector<PeerId> ran;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto sent = Dispatch();
    ASSERT_EQ(sent.size(), 1u);
    ran.push_back(sent.begin()->first);
    Advance(milliseconds(1000));
    Heartbeat("w1");
    Heartbeat("w2");
    scheduler_.Tick(now_);
  }
  EXPECT_NE(ran[0], ran[1]);
  const auto done = DoneEvents("c1");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_FALSE(done[0].result().ok());
  EXPECT_EQ(done[0].result().error(),
            fmt::format("gave up after 2 attempts: worker {} ran past the 1.0 s deadline; "
                        "worker {} ran past the 1.0 s deadline",
                        ran[0], ran[1]));
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->failed(), 1u);
}

TEST_F(SchedulerTest, APoisonTaskThatKillsEveryWorkerFailsInsteadOfLoopingForever) {
  Submit("c1", Spec(pb::SYNC, 1));  // default max_attempts: 3
  for (int worker = 1; worker <= 5; ++worker) {
    const PeerId peer = "w" + std::to_string(worker);
    Hello(peer);
    if (JobDone("c1") != nullptr) break;
    if (Dispatch()[peer].empty()) break;
    Advance(milliseconds(1600));  // it dies running the task
    scheduler_.Tick(now_);
  }
  EXPECT_EQ(scheduler_.stats().dispatched, 3u);
  EXPECT_EQ(scheduler_.job_count(), 0u);
}

TEST_F(SchedulerTest, ARestartedSchedulerResumesAJobRunningOnlyWhatHadNotFinished) {
  Hello("w1", 2);
  const std::string id = Submit("c1", Spec(pb::THREADS, 3));
  auto sent = Dispatch();
  ASSERT_EQ(sent["w1"].size(), 2u);
  Finish("w1", sent["w1"][0]);  // task 1 done; task 2 in flight on w1; task 3 never sent
  Clients();

  // The coordinator dies; a new one reads the journal.
  Scheduler restarted(
      Options(), [] { return "job-x"; }, journal_.get());
  auto unfinished = journal_->Unfinished();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 1u);
  restarted.Restore((*unfinished)[0], now_);
  // Its client comes back (as its owner), so it runs again.
  pb::Envelope back = NewEnvelope();
  back.mutable_watch()->set_job_id(id);
  back.mutable_watch()->set_owner(true);
  restarted.OnClientMessage("c1-again", back, now_);
  // w1 reconnects still running task 2: it keeps it, nothing runs twice.
  pb::Envelope hello = NewEnvelope();
  hello.mutable_hello()->set_worker_id("w1");
  hello.mutable_hello()->set_concurrency(2);
  pb::TaskRef* held = hello.mutable_hello()->add_holding();
  held->set_job_id(id);
  held->set_index(2);
  restarted.OnWorkerMessage("w1-again", hello, now_);
  restarted.Dispatch(now_);
  std::vector<uint32_t> indexes;
  for (const Outgoing& out : restarted.to_workers()) {
    if (out.envelope.has_task()) indexes.push_back(out.envelope.task().index());
  }
  EXPECT_EQ(indexes, std::vector<uint32_t>{3});
  for (uint32_t index : {2u, 3u}) {
    pb::Envelope result = NewEnvelope();
    result.mutable_result()->set_job_id(id);
    result.mutable_result()->set_index(index);
    result.mutable_result()->set_ok(true);
    restarted.OnWorkerMessage("w1-again", result, now_);
  }
  const pb::JobDone* done = nullptr;
  for (const Outgoing& out : restarted.to_clients()) {
    if (out.envelope.has_job_done()) done = &out.envelope.job_done();
  }
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->ok(), 3u);
  EXPECT_EQ(restarted.stats().dispatched, 1u);
}

TEST_F(SchedulerTest, AClientThatWatchesAgainGetsTheResultsReplayedAndTheRest) {
  Hello("w1", 2);
  const std::string id = Submit("c1", Spec(pb::THREADS, 2));
  auto sent = Dispatch();
  Finish("w1", sent["w1"][0]);
  Clients();
  pb::Envelope watch = NewEnvelope();
  watch.mutable_watch()->set_job_id(id);
  watch.mutable_watch()->set_owner(true);
  scheduler_.OnClientMessage("c2", watch, now_);  // the same client, on a new connection
  Finish("w1", sent["w1"][1]);
  std::vector<uint32_t> replayed, live;
  bool done = false;
  for (const Outgoing& out : Clients()) {
    EXPECT_EQ(out.peer, "c2") << "events still go to the old connection";
    if (out.envelope.has_job_done()) done = true;
    if (!out.envelope.has_events()) continue;
    for (const auto& e : out.envelope.events().events()) {
      if (e.type() != pb::TaskEvent::DONE) continue;
      (out.envelope.events().replay() ? replayed : live).push_back(e.index());
    }
  }
  EXPECT_EQ(replayed, std::vector<uint32_t>{1});
  EXPECT_EQ(live, std::vector<uint32_t>{2});
  EXPECT_TRUE(done);

  // After the end, a Watch says so (with the job's spec), replays everything
  // and the JobDone.
  watch.mutable_watch()->set_owner(false);
  scheduler_.OnClientMessage("c3", watch, now_);
  auto again = Clients();
  ASSERT_EQ(again.size(), 3u);
  EXPECT_TRUE(again[0].envelope.accepted().ended());
  EXPECT_EQ(again[0].envelope.accepted().spec().count(), 2u);
  EXPECT_EQ(again[1].envelope.events().events_size(), 2);
  EXPECT_EQ(again[2].envelope.job_done().ok(), 2u);
  // A job never seen is an UNKNOWN_JOB error that says it was lost.
  watch.mutable_watch()->set_job_id("job-404");
  scheduler_.OnClientMessage("c3", watch, now_);
  auto unknown = Clients();
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0].envelope.error().code(), pb::Error::UNKNOWN_JOB);
  EXPECT_NE(unknown[0].envelope.error().message().find("job-404"), std::string::npos);
}

TEST_F(SchedulerTest, AClientThatAsksForResultsOnlyHearsNoTaskStartsUntilSomeoneWatches) {
  Hello("w1", 2);
  pb::Envelope submit = NewEnvelope();
  *submit.mutable_submit()->mutable_spec() = Spec(pb::THREADS, 4);
  submit.mutable_submit()->set_results_only(true);
  scheduler_.OnClientMessage("c1", submit, now_);
  std::string id;
  for (const Outgoing& out : Clients()) {
    if (out.envelope.has_accepted()) id = out.envelope.accepted().job_id();
  }
  ASSERT_FALSE(id.empty());
  // Events heard since the last call: "peer type index", in order.
  auto heard = [&] {
    std::vector<std::string> seen;
    for (const Outgoing& o : Clients()) {
      if (!o.envelope.has_events()) continue;
      for (const pb::TaskEvent& e : o.envelope.events().events()) {
        seen.push_back(
            fmt::format("{} {} {}", o.peer, pb::TaskEvent::Type_Name(e.type()), e.index()));
      }
    }
    return seen;
  };
  auto sent = Dispatch();
  ASSERT_EQ(sent["w1"].size(), 2u);
  const double first_start = sent["w1"][0].math().start();
  EXPECT_EQ(heard(), std::vector<std::string>{}) << "two started: the client asked not to hear it";
  Finish("w1", sent["w1"][0]);
  sent = Dispatch();
  ASSERT_EQ(sent["w1"].size(), 1u);
  EXPECT_EQ(heard(), std::vector<std::string>{"c1 DONE 1"});
  // The result arrives whole (it is moved into the event, not copied).
  const std::vector<pb::TaskEvent> done = DoneEvents("c1");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].worker(), "w1");
  EXPECT_EQ(done[0].result().worker_id(), "w1");
  EXPECT_EQ(done[0].result().number(), first_start + 1000);

  // A watcher may print each task's start: from now on the job's followers hear them.
  pb::Envelope watch = NewEnvelope();
  watch.mutable_watch()->set_job_id(id);
  scheduler_.OnClientMessage("watcher", watch, now_);
  Clients();
  Finish("w1", sent["w1"][0]);
  sent = Dispatch();
  ASSERT_EQ(sent["w1"].size(), 1u);
  std::vector<std::string> both = heard();
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, (std::vector<std::string>{"c1 DISPATCHED 4", "c1 DONE 3", "watcher DISPATCHED 4",
                                            "watcher DONE 3"}));
}

TEST_F(SchedulerTest, AWatcherThatStopsFollowingHearsNothingMoreAndTheOwnerStillDoes) {
  Hello("w1", 3);
  const std::string id = Submit("c1", Spec(pb::THREADS, 3));
  auto sent = Dispatch();
  Finish("w1", sent["w1"][0]);
  pb::Envelope watch = NewEnvelope();
  watch.mutable_watch()->set_job_id(id);
  scheduler_.OnClientMessage("dash", watch, now_);
  Finish("w1", sent["w1"][1]);
  Clients();
  scheduler_.StopFollowing("dash", id);
  scheduler_.StopFollowing("c1", id);           // the owner is not let go this way
  scheduler_.StopFollowing("dash", "job-404");  // nothing to stop
  Finish("w1", sent["w1"][2]);
  bool owner_done = false;
  for (const Outgoing& out : Clients()) {
    EXPECT_NE(out.peer, "dash") << "it stopped following";
    if (out.peer == "c1" && out.envelope.has_job_done()) owner_done = true;
  }
  EXPECT_TRUE(owner_done);
}

TEST_F(SchedulerTest, ADrawnJobKeepsItsFinishedTasksUntilTakenAndSaysWhenItEnds) {
  Hello("w1", 3);
  const std::string id = Submit("c1", Spec(pb::THREADS, 3));
  auto sent = Dispatch();
  Finish("w1", sent["w1"][0]);  // before it is drawn: the journal's
  EXPECT_FALSE(scheduler_.Draw("job-404", true));
  ASSERT_TRUE(scheduler_.Draw(id, true));
  std::vector<Drawn> drawn = scheduler_.TakeDrawn();
  ASSERT_EQ(drawn.size(), 1u);
  ASSERT_EQ(drawn[0].tasks.size(), 1u) << "seeded with what it finished before";
  EXPECT_EQ(drawn[0].tasks[0].index, sent["w1"][0].index());
  EXPECT_TRUE(scheduler_.TakeDrawn().empty()) << "nothing new";
  Finish("w1", sent["w1"][1], /*ok=*/false);
  drawn = scheduler_.TakeDrawn();
  ASSERT_EQ(drawn.size(), 1u);
  EXPECT_EQ(drawn[0].job_id, id);
  EXPECT_FALSE(drawn[0].ended);
  ASSERT_EQ(drawn[0].tasks.size(), 1u);
  EXPECT_EQ(drawn[0].tasks[0].index, sent["w1"][1].index());
  EXPECT_FALSE(drawn[0].tasks[0].ok);
  EXPECT_EQ(drawn[0].tasks[0].worker, "w1");
  EXPECT_TRUE(scheduler_.TakeDrawn().empty()) << "taken once";
  // Its last task: kept, and the job's end said with it.
  Finish("w1", sent["w1"][2]);
  drawn = scheduler_.TakeDrawn();
  ASSERT_EQ(drawn.size(), 1u);
  EXPECT_TRUE(drawn[0].ended);
  ASSERT_EQ(drawn[0].tasks.size(), 1u);
  EXPECT_EQ(drawn[0].tasks[0].number, std::optional<double>(sent["w1"][2].math().start() + 1000));
  EXPECT_FALSE(scheduler_.Draw(id, true)) << "it runs no more";
}

TEST_F(SchedulerTest, AStoppingSchedulerRejectsNewJobsAndEndsRunningOnesOnRequest) {
  Hello("w1");
  const std::string id = Submit("c1", Spec(pb::SYNC, 3));
  Dispatch();
  scheduler_.StopAccepting("the coordinator is shutting down");
  EXPECT_EQ(Submit("c2", Spec(pb::SYNC, 1)), "");
  bool rejected = false;
  for (const Outgoing& o : client_log_) {
    rejected |=
        o.peer == "c2" && o.envelope.rejected().reason() == "the coordinator is shutting down";
  }
  EXPECT_TRUE(rejected);
  scheduler_.EndAll("grace period over", now_);
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->reason(), "grace period over");
  EXPECT_EQ(scheduler_.job_count(), 0u);
}

TEST_F(SchedulerTest, WhenTheJournalCannotBeWrittenNewJobsAreRefusedWithTheReason) {
  Hello("w1");
  const std::string running = Submit("c1", Spec(pb::SYNC, 2));
  ASSERT_TRUE(journal_->Commit().ok());
  journal_->LimitPages(1);
  for (int i = 0; i < 2000; ++i) journal_->Finished(pb::Result());  // fills it
  ASSERT_FALSE(journal_->Commit().ok());
  EXPECT_EQ(Submit("c2", Spec(pb::SYNC, 1)), "");
  bool refused = false;
  for (const Outgoing& o : client_log_) {
    refused |= o.peer == "c2" && o.envelope.rejected().reason() ==
                                     "the coordinator cannot record jobs: database or disk is full";
  }
  EXPECT_TRUE(refused);
  // The running job goes on (in memory) to its end.
  for (int i = 0; i < 2; ++i) {
    auto sent = Dispatch();
    ASSERT_EQ(sent["w1"].size(), 1u);
    Finish("w1", sent["w1"][0]);
  }
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->ok(), 2u);
  (void)running;
}

TEST_F(SchedulerTest, HeartbeatsGoOutEveryInterval) {
  Hello("w1");
  Workers();
  Advance(milliseconds(499));
  scheduler_.Tick(now_);
  EXPECT_TRUE(Workers().empty());
  Advance(milliseconds(1));
  scheduler_.Tick(now_);
  auto out = Workers();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].envelope.has_heartbeat());
  EXPECT_EQ(scheduler_.NextWakeup(now_), now_ + milliseconds(500));
}

TEST_F(SchedulerTest, UnknownWorkerIsAskedToSayHello) {
  Heartbeat("stranger");
  auto out = Workers();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].envelope.error().code(), pb::Error::UNKNOWN_PEER);
}

TEST_F(SchedulerTest, ReconnectedWorkerKeepsWhatItHoldsAndTheRestRunsAgain) {
  Hello("w1", 2, /*pid=*/7);
  Submit("c1", Spec(pb::THREADS, 2));
  const auto tasks = Dispatch()["w1"];
  // Same worker process, new connection (new routing id). It still runs
  // task 1; the result of task 2 was lost with the old connection.
  pb::Envelope env = NewEnvelope();
  env.mutable_hello()->set_worker_id("w1");
  env.mutable_hello()->set_host("host");
  env.mutable_hello()->set_pid(7);
  env.mutable_hello()->set_concurrency(2);
  pb::TaskRef* held = env.mutable_hello()->add_holding();
  held->set_job_id(tasks[0].job_id());
  held->set_index(tasks[0].index());
  scheduler_.OnWorkerMessage("w1-again", env, now_);
  EXPECT_EQ(scheduler_.worker_count(), 1u);

  auto again = Dispatch()["w1-again"];
  ASSERT_EQ(again.size(), 1u) << "task 2 runs again; task 1 still uses a credit";
  EXPECT_EQ(again[0].index(), tasks[1].index());
  EXPECT_EQ(again[0].attempt(), 2u);
  Finish("w1-again", tasks[0]);
  Finish("w1-again", again[0]);
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->ok(), 2u);
}

TEST_F(SchedulerTest, EachClientHearsOnlyItsOwnJob) {
  Hello("w1", 8);
  const std::string a = Submit("ca", Spec(pb::THREADS, 2));
  const std::string b = Submit("cb", Spec(pb::THREADS, 3));
  ASSERT_NE(a, b);
  const auto tasks = Dispatch()["w1"];
  for (const pb::Task& t : tasks) Finish("w1", t);
  for (const auto& [client, job, n] : {std::tuple{"ca", a, 2u}, std::tuple{"cb", b, 3u}}) {
    EXPECT_EQ(DoneEvents(client).size(), n);
    ASSERT_NE(JobDone(client), nullptr);
    EXPECT_EQ(JobDone(client)->job_id(), job);
  }
  for (const Outgoing& o : client_log_) {
    if (o.envelope.has_events()) {
      EXPECT_EQ(o.envelope.events().job_id(), o.peer == "ca" ? a : b);
    }
  }
}

TEST_F(SchedulerTest, BadSpecIsRejectedWithAReason) {
  pb::Envelope env = NewEnvelope();
  *env.mutable_submit()->mutable_spec() = Spec(pb::SYNC, 0);
  scheduler_.OnClientMessage("c1", env, now_);
  auto out = Clients();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].envelope.rejected().reason(), "count must be between 1 and 10000000 (got 0)");
  EXPECT_EQ(scheduler_.job_count(), 0u);
}

TEST_F(SchedulerTest, DrainingWorkerGetsNoNewTasksAndReturnedTasksAreNotAttempts) {
  Hello("w1", 2);
  Submit("c1", Spec(pb::THREADS, 3));
  const auto tasks = Dispatch()["w1"];
  pb::Envelope drain = NewEnvelope();
  drain.mutable_drain()->set_reason("SIGTERM");
  scheduler_.OnWorkerMessage("w1", drain, now_);
  pb::Envelope ret = NewEnvelope();
  ret.mutable_returned()->set_job_id(tasks[1].job_id());
  ret.mutable_returned()->set_index(tasks[1].index());
  scheduler_.OnWorkerMessage("w1", ret, now_);
  Finish("w1", tasks[0]);
  EXPECT_TRUE(Dispatch().empty());

  Hello("w2", 2);
  auto sent = Dispatch()["w2"];
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].index(), tasks[1].index());
  EXPECT_EQ(sent[0].attempt(), 1u) << "a returned task was never run";
}

TEST_F(SchedulerTest, TasksSentToADrainingWorkerThatLeftWithoutThemRunElsewhereAsTheSameAttempt) {
  // SIGTERM reached w1 while two tasks were on their way to it: it had
  // nothing running, so it said Drain and left before reading them.
  Hello("w1", 2);
  pb::JobSpec spec = Spec(pb::THREADS, 2);
  spec.set_max_attempts(1);  // a counted attempt would fail the task
  Submit("c1", spec);
  const auto tasks = Dispatch()["w1"];
  ASSERT_EQ(tasks.size(), 2u);
  pb::Envelope drain = NewEnvelope();
  drain.mutable_drain()->set_reason("signal");
  scheduler_.OnWorkerMessage("w1", drain, now_);
  drain.mutable_drain()->set_leaving(true);
  scheduler_.OnWorkerMessage("w1", drain, now_);

  Hello("w2", 2);
  const auto again = Dispatch()["w2"];
  ASSERT_EQ(again.size(), 2u) << "both go back to the queue; neither fails";
  for (const pb::Task& t : again) EXPECT_EQ(t.attempt(), 1u) << "task " << t.index();
  for (const pb::Task& t : again) Finish("w2", t);
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->ok(), 2u);
}

TEST_F(SchedulerTest, CancelEndsTheJobAndLateResultsAreDropped) {
  Hello("w1", 2);
  const std::string job = Submit("c1", Spec(pb::THREADS, 10));
  const auto tasks = Dispatch()["w1"];
  pb::Envelope cancel = NewEnvelope();
  cancel.mutable_cancel()->set_job_id(job);
  scheduler_.OnClientMessage("c1", cancel, now_);
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->reason(), "cancelled by the client");
  Finish("w1", tasks[0]);
  EXPECT_EQ(scheduler_.stats().duplicates_dropped, 1u);
  EXPECT_EQ(scheduler_.job_count(), 0u);
}

TEST_F(SchedulerTest, SilentClientsJobsAreCancelled) {
  Hello("w1", 1);
  Submit("c1", Spec(pb::SYNC, 10));
  for (int i = 0; i < 30; ++i) {
    Advance(milliseconds(400));
    Heartbeat("w1");
    scheduler_.Tick(now_);
  }
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->reason(), "the client went away");
}

TEST_F(SchedulerTest, StatusListsWorkersInJoinOrder) {
  Hello("w2", 6);
  Hello("w1", 3);
  pb::Envelope env = NewEnvelope();
  env.mutable_status();
  scheduler_.OnClientMessage("c1", env, now_);
  auto out = Clients();
  ASSERT_EQ(out.size(), 1u);
  const pb::StatusReply& reply = out[0].envelope.status_reply();
  ASSERT_EQ(reply.workers_size(), 2);
  EXPECT_EQ(reply.workers(0).worker_id(), "w2");
  EXPECT_EQ(reply.workers(0).concurrency(), 6u);
  EXPECT_EQ(reply.workers(1).worker_id(), "w1");
}

TEST_F(SchedulerTest, JobWaitsForWorkersThatComeLater) {
  Submit("c1", Spec(pb::SYNC, 1));
  EXPECT_TRUE(Dispatch().empty());
  Hello("late");
  EXPECT_EQ(Dispatch()["late"].size(), 1u);
}

}  // namespace
}  // namespace fanout::coordinator

namespace fanout::coordinator {
namespace {

// Bank jobs open their book on the ledger before any task runs, and read it
// back before JobDone; ledger requests are re-sent until answered.
class BankSchedulerTest : public testing::Test {
 protected:
  BankSchedulerTest() : scheduler_(Options(), [] { return std::string("job-1"); }) {}
  static SchedulerOptions Options() {
    SchedulerOptions o;
    o.ledger = "tcp://ledger:5557";
    return o;
  }
  pb::JobSpec Bank(uint32_t count) {
    pb::JobSpec spec;
    spec.set_model(pb::SYNC);
    spec.set_count(count);
    pb::BankJob* b = spec.mutable_bank();
    b->set_accounts(5);
    b->set_initial(1000);
    b->set_amount_max(100);
    b->set_mode(pb::ATOMIC);
    return spec;
  }
  void Submit(const pb::JobSpec& spec) {
    pb::Envelope hello = NewEnvelope();
    hello.mutable_hello()->set_worker_id("w1");
    hello.mutable_hello()->set_concurrency(4);
    scheduler_.OnWorkerMessage("w1", hello, now_);
    pb::Envelope env = NewEnvelope();
    *env.mutable_submit()->mutable_spec() = spec;
    scheduler_.OnClientMessage("c1", env, now_);
  }
  std::vector<pb::LedgerRequest> Ledger() {
    std::vector<pb::LedgerRequest> out;
    for (const pb::Envelope& e : scheduler_.to_ledger()) {
      if (e.has_ledger_request()) out.push_back(e.ledger_request());
      pings_ += e.has_status() ? 1 : 0;  // health pings
    }
    scheduler_.to_ledger().clear();
    return out;
  }
  std::vector<pb::Task> Dispatch() {
    scheduler_.Dispatch(now_);
    std::vector<pb::Task> tasks;
    for (const Outgoing& o : scheduler_.to_workers()) {
      if (o.envelope.has_task()) tasks.push_back(o.envelope.task());
    }
    scheduler_.to_workers().clear();
    return tasks;
  }
  void Answer(const pb::LedgerRequest& request, bool ok = true) {
    pb::LedgerReply reply;
    reply.set_request_id(request.request_id());
    reply.set_ok(ok);
    if (request.has_snapshot()) {
      (*reply.mutable_balances())["bank_1"] = 960;
      (*reply.mutable_balances())["bank_2"] = 4040;
    }
    if (!ok) reply.set_error("disk full");
    scheduler_.OnLedgerReply(reply, now_);
  }
  const pb::JobDone* Done() {
    for (const Outgoing& o : scheduler_.to_clients()) {
      if (o.envelope.has_job_done()) {
        done_ = o.envelope.job_done();
        return &done_;
      }
    }
    return nullptr;
  }
  void Complete(const pb::Task& task) {
    pb::Envelope env = NewEnvelope();
    env.mutable_result()->set_job_id(task.job_id());
    env.mutable_result()->set_index(task.index());
    env.mutable_result()->set_attempt(task.attempt());
    env.mutable_result()->set_ok(true);
    scheduler_.OnWorkerMessage("w1", env, now_);
  }

  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
  Scheduler scheduler_;
  pb::JobDone done_;
  int pings_ = 0;
};

TEST_F(BankSchedulerTest, AnIdleLedgerIsPingedAndItsAnswerKeptForStatus) {
  scheduler_.Tick(now_);
  Ledger();
  EXPECT_EQ(pings_, 1);
  now_ += milliseconds(1000);
  scheduler_.Tick(now_);
  Ledger();
  EXPECT_EQ(pings_, 1) << "every 5 s, not every tick";
  scheduler_.OnLedgerAlive(now_);
  pb::Envelope status = NewEnvelope();
  status.mutable_status();
  scheduler_.OnClientMessage("c1", status, now_ + milliseconds(250));
  for (const Outgoing& o : scheduler_.to_clients()) {
    if (!o.envelope.has_status_reply()) continue;
    EXPECT_EQ(o.envelope.status_reply().ledger().endpoint(), "tcp://ledger:5557");
    EXPECT_EQ(o.envelope.status_reply().ledger().answered_ms_ago(), 250);
  }
}

TEST_F(BankSchedulerTest, TasksWaitForTheBookAndCarryTheLedger) {
  Submit(Bank(2));
  std::vector<pb::LedgerRequest> sent = Ledger();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].book(), "job-1");
  EXPECT_EQ(sent[0].reset().accounts(), 5u);
  EXPECT_TRUE(sent[0].reset().keep_existing());
  EXPECT_TRUE(Dispatch().empty()) << "no transfer before the book exists";

  // Unanswered for a second: the same request again.
  now_ += milliseconds(1001);
  scheduler_.Tick(now_);
  std::vector<pb::LedgerRequest> again = Ledger();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].request_id(), sent[0].request_id());

  Answer(sent[0]);
  std::vector<pb::Task> tasks = Dispatch();
  ASSERT_EQ(tasks.size(), 1u);  // sync: one at a time
  EXPECT_EQ(tasks[0].transfer().ledger(), "tcp://ledger:5557");
  EXPECT_EQ(tasks[0].transfer().book(), "job-1");
  EXPECT_EQ(tasks[0].transfer().transfer_id(), "job-1/1");
  EXPECT_NE(tasks[0].transfer().from(), tasks[0].transfer().to());

  Complete(tasks[0]);
  Complete(Dispatch()[0]);
  EXPECT_EQ(Done(), nullptr) << "JobDone waits for the final balances";
  std::vector<pb::LedgerRequest> snapshot = Ledger();
  ASSERT_EQ(snapshot.size(), 1u);
  ASSERT_TRUE(snapshot[0].has_snapshot());
  Answer(snapshot[0]);
  const pb::JobDone* done = Done();
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->ok(), 2u);
  EXPECT_EQ(done->ledger().sum(), 5000);
  EXPECT_EQ(done->ledger().expected_sum(), 5000);
  EXPECT_EQ(done->ledger().balances().at("bank_2"), 4040);
}

TEST_F(BankSchedulerTest, ALedgerThatNeverAnswersEndsTheJobWithTheReason) {
  Submit(Bank(3));
  Ledger();
  for (int i = 0; i < 31; ++i) {
    now_ += milliseconds(1000);
    pb::Envelope alive = NewEnvelope();
    alive.mutable_heartbeat();
    scheduler_.OnClientMessage("c1", alive, now_);  // the client is still there
    scheduler_.Tick(now_);
  }
  const pb::JobDone* done = Done();
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->failed(), 3u);
  EXPECT_NE(done->reason().find("did not answer"), std::string::npos) << done->reason();
}

TEST(BankSchedulerRejectTest, NoLedgerNoBankJobs) {
  Scheduler scheduler(SchedulerOptions{}, [] { return std::string("job-1"); });
  pb::Envelope env = NewEnvelope();
  env.mutable_submit()->mutable_spec()->set_model(pb::SYNC);
  env.mutable_submit()->mutable_spec()->set_count(1);
  env.mutable_submit()->mutable_spec()->mutable_bank()->set_accounts(5);
  env.mutable_submit()->mutable_spec()->mutable_bank()->set_amount_max(1);
  scheduler.OnClientMessage("c1", env, TimePoint{});
  ASSERT_EQ(scheduler.to_clients().size(), 1u);
  EXPECT_NE(scheduler.to_clients()[0].envelope.rejected().reason().find("--ledger"),
            std::string::npos);
}

}  // namespace
}  // namespace fanout::coordinator

namespace fanout::coordinator {
namespace {

TEST(ClockOffsetTest, HeartbeatsMoveResultStampsOntoTheCoordinatorsClock) {
  int64_t coordinator_us = 10'000'000;
  SchedulerOptions options;
  options.unix_micros = [&] { return coordinator_us; };
  Scheduler s(options, [] { return std::string("job-1"); });
  TimePoint now = TimePoint{} + std::chrono::hours(1);
  pb::Envelope hello = NewEnvelope();
  hello.mutable_hello()->set_worker_id("w1");
  hello.mutable_hello()->set_concurrency(1);
  s.OnWorkerMessage("w1", hello, now);

  // The worker's clock is 5 s ahead; each way takes about 100 us.
  const int64_t t0 = coordinator_us;
  const int64_t t1 = t0 + 5'000'000 + 100, t2 = t1 + 50;
  coordinator_us = t0 + 250;
  pb::Envelope hb = NewEnvelope();
  hb.mutable_heartbeat()->set_echo_us(t0);
  hb.mutable_heartbeat()->set_echo_heard_us(t1);
  hb.mutable_heartbeat()->set_sent_us(t2);
  s.OnWorkerMessage("w1", hb, now);
  EXPECT_EQ(s.ClockOffsetMicros("w1"), 5'000'000);

  pb::Envelope submit = NewEnvelope();
  pb::JobSpec* spec = submit.mutable_submit()->mutable_spec();
  spec->set_model(pb::SYNC);
  spec->set_count(1);
  spec->mutable_math()->set_iterations(1);
  s.OnClientMessage("c1", submit, now);
  s.Dispatch(now);
  pb::Envelope result = NewEnvelope();
  pb::Result* r = result.mutable_result();
  r->set_job_id("job-1");
  r->set_index(1);
  r->set_attempt(1);
  r->set_ok(true);
  r->set_worker_id("w1");
  r->set_started_us(15'100'000);
  r->set_finished_us(15'200'000);
  s.OnWorkerMessage("w1", result, now);
  bool seen = false;
  for (const Outgoing& o : s.to_clients()) {
    if (!o.envelope.has_events()) continue;
    for (const pb::TaskEvent& e : o.envelope.events().events()) {
      if (e.type() != pb::TaskEvent::DONE) continue;
      seen = true;
      EXPECT_EQ(e.result().started_us(), 10'100'000);
      EXPECT_EQ(e.result().finished_us(), 10'200'000);
    }
  }
  EXPECT_TRUE(seen);
}

// ---- routing by kind, and telling a client that its job waits ------------------

TEST_F(SchedulerTest, TasksGoOnlyToWorkersThatServeTheirKind) {
  Hello("plain", 4, 100, {"math", "web", "bank"});
  Hello("exec", 4, 101, {"math", "web", "bank", "exec"});
  Submit("c1", ExecSpec(6));
  auto sent = Dispatch();
  EXPECT_EQ(sent.count("plain"), 0u) << "a worker without --allow-exec never gets a command";
  EXPECT_EQ(sent["exec"].size(), 6u);
  // A worker older than Hello.serves runs the built-in kinds, not exec.
  Hello("old", 4, 102);
  Submit("c2", ExecSpec(1));
  EXPECT_EQ(Dispatch().count("old"), 0u);
}

TEST_F(SchedulerTest, AJobNoWorkerCanRunWaitsAndItsClientIsToldWhyAndWhenItGoesOn) {
  Hello("plain", 4, 100, {"math"});
  const std::string job = Submit("c1", ExecSpec(2));
  EXPECT_TRUE(Dispatch().empty());
  scheduler_.Tick(now_);
  EXPECT_TRUE(Waiting("c1").empty()) << "not at once: a worker may be on its way";
  Advance(milliseconds(600));
  Heartbeat("plain");
  scheduler_.Tick(now_);
  ASSERT_EQ(Waiting("c1").size(), 1u);
  EXPECT_EQ(Waiting("c1")[0],
            "no connected worker can run exec tasks: start one with --allow-exec");
  Advance(milliseconds(500));
  Heartbeat("plain");
  scheduler_.Tick(now_);
  EXPECT_EQ(Waiting("c1").size(), 1u) << "said once";
  Hello("exec", 4, 101, {"exec"});
  scheduler_.Tick(now_);
  EXPECT_EQ(Waiting("c1").back(), "") << "told it goes on";
  EXPECT_EQ(Dispatch()["exec"].size(), 2u);
}

TEST_F(SchedulerTest, CallTasksGoOnlyToWorkersThatServeTheirFunction) {
  const auto hello = [&](const PeerId& peer, int64_t pid, std::vector<std::string> functions) {
    pb::Envelope env = NewEnvelope();
    env.mutable_hello()->set_worker_id(peer);
    env.mutable_hello()->set_pid(pid);
    env.mutable_hello()->set_concurrency(4);
    env.mutable_hello()->add_serves("call");
    for (std::string& f : functions) env.mutable_hello()->add_functions(std::move(f));
    scheduler_.OnWorkerMessage(peer, env, now_);
  };
  const auto call = [](const std::string& name, uint32_t count) {
    pb::JobSpec spec;
    spec.set_model(pb::THREADS);
    spec.set_count(count);
    spec.mutable_call()->set_name(name);
    for (uint32_t i = 0; i < count; ++i) spec.mutable_call()->add_items("x");
    return spec;
  };
  Hello("cpp", 4, 100, {"math", "web", "bank"});
  hello("thumbs", 101, {"thumb"});
  hello("resizer", 102, {"resize", "thumb"});
  Submit("c1", call("resize", 6));
  auto sent = Dispatch();
  EXPECT_EQ(sent.count("cpp"), 0u) << "a worker without functions never gets a call";
  EXPECT_EQ(sent.count("thumbs"), 0u) << "nor one serving other names";
  EXPECT_EQ(sent["resizer"].size(), 4u) << "the one that serves it, up to its credit";
  // A name nobody serves waits, and its client is told which.
  Submit("c2", call("crop", 1));
  EXPECT_TRUE(Dispatch().empty());
  Advance(milliseconds(600));
  for (const char* w : {"cpp", "thumbs", "resizer"}) Heartbeat(w);
  scheduler_.Tick(now_);
  ASSERT_EQ(Waiting("c2").size(), 1u);
  EXPECT_EQ(Waiting("c2")[0], "no connected worker serves 'crop'");
  hello("cropper", 103, {"crop"});
  scheduler_.Tick(now_);
  EXPECT_EQ(Waiting("c2").back(), "") << "told it goes on";
  EXPECT_EQ(Dispatch()["cropper"].size(), 1u);
}

TEST_F(SchedulerTest, WithNoWorkerAtAllTheClientIsToldSo) {
  Submit("c1", Spec(pb::SYNC, 1));
  Advance(milliseconds(600));
  scheduler_.Tick(now_);
  ASSERT_FALSE(Waiting("c1").empty());
  EXPECT_EQ(Waiting("c1")[0], "no worker is connected to the coordinator");
}

// ---- claims: what each worker runs, per attempt -----------------------------------

TEST_F(SchedulerTest, AnAttemptSentAgainToTheSameStuckWorkerIsASecondClaimAndBothAreLetGo) {
  SchedulerOptions o = Options();
  Hello("w1", 4);
  pb::JobSpec spec = Spec(pb::THREADS, 1);
  spec.set_task_timeout_ms(1000);
  spec.set_max_attempts(5);
  const std::string job = Submit("c1", spec);
  ASSERT_EQ(Dispatch()["w1"].size(), 1u);
  // Past its deadline the task runs again; the only worker is the stuck one.
  Advance(milliseconds(1100));
  Heartbeat("w1");
  scheduler_.Tick(now_);
  auto again = Dispatch()["w1"];
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt(), 2u);
  // The worker dies holding both attempts: the task must run again.
  Hello("w2", 4, 200);
  for (int i = 0; i < 4; ++i) {
    Advance(milliseconds(450));
    Heartbeat("w2");
    scheduler_.Tick(now_);
  }
  auto rescued = Dispatch()["w2"];
  ASSERT_EQ(rescued.size(), 1u) << "a task both of whose claims died is not forgotten";
  Finish("w2", rescued[0]);
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->ok(), 1u);
}

TEST_F(SchedulerTest, ASecondResultOfOneAttemptReleasesNoOtherAttemptsClaim) {
  Hello("w1", 3);
  pb::JobSpec spec = Spec(pb::THREADS, 2);
  spec.set_task_timeout_ms(1000);
  Submit("c1", spec);
  auto first = Dispatch()["w1"];
  ASSERT_EQ(first.size(), 2u);
  Advance(milliseconds(1100));
  Heartbeat("w1");
  scheduler_.Tick(now_);
  // Past the deadline: task 1 runs again on the one worker, which has a
  // thread free; w1 now runs attempt 1 of both tasks and attempt 2 of task 1.
  auto again = Dispatch()["w1"];
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(InFlight("w1"), 3u);
  Finish("w1", first[0]);  // attempt 1 of task 1 ends...
  Finish("w1", first[0]);  // ...and its result arrives twice
  EXPECT_EQ(InFlight("w1"), 2u) << "the duplicate must not free attempt 2's claim";
}

TEST_F(SchedulerTest, ARestartedCoordinatorCountsATaskAWorkerStillRunsEvenIfItIsDone) {
  // The worker says it still runs attempt 1 of task 1, which another
  // worker finished: that thread is busy, so a sync job sends it nothing.
  Hello("w2", 4, 200);
  const std::string job = Submit("c1", Spec(pb::SYNC, 3));
  auto sent = Dispatch()["w2"];
  ASSERT_EQ(sent.size(), 1u);
  Finish("w2", sent[0]);
  pb::Envelope hello = NewEnvelope();
  hello.mutable_hello()->set_worker_id("w1");
  hello.mutable_hello()->set_host("host");
  hello.mutable_hello()->set_pid(100);
  pb::TaskRef* ref = hello.mutable_hello()->add_holding();
  ref->set_job_id(job);
  ref->set_index(1);
  ref->set_attempt(1);
  scheduler_.OnWorkerMessage("w1", hello, now_);
  EXPECT_EQ(Dispatch().count("w1"), 0u) << "w1's one sync slot is taken";
}

// ---- clients -----------------------------------------------------------------

TEST_F(SchedulerTest, AWatchInTheSameTurnAsAResultDoesNotSendItTwice) {
  Hello("w1");
  const std::string job = Submit("c1", Spec(pb::SYNC, 2));
  auto sent = Dispatch()["w1"];
  ASSERT_EQ(sent.size(), 1u);
  // One loop turn: the result arrives, then the client (on a new
  // connection) asks to follow the job again.
  Finish("w1", sent[0]);
  pb::Envelope watch = NewEnvelope();
  watch.mutable_watch()->set_job_id(job);
  scheduler_.OnClientMessage("c1-again", watch, now_);
  Clients();
  int done_for_task_1 = 0, live = 0;
  for (const Outgoing& o : client_log_) {
    if (o.peer != "c1-again" || !o.envelope.has_events()) continue;
    for (const auto& e : o.envelope.events().events()) {
      if (e.type() != pb::TaskEvent::DONE || e.index() != 1) continue;
      ++done_for_task_1;
      live += o.envelope.events().replay() ? 0 : 1;
    }
  }
  EXPECT_EQ(done_for_task_1, 1) << "once, in the replay";
  EXPECT_EQ(live, 0);
}

TEST_F(SchedulerTest, ASilentClientsJobsAreCancelledAndTheClientForgotten) {
  Hello("w1");
  Submit("c1", Spec(pb::SYNC, 100));
  Dispatch();
  for (int i = 0; i < 25; ++i) {
    Advance(milliseconds(500));
    Heartbeat("w1");
    scheduler_.Tick(now_);
  }
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->reason(), "the client went away");
  // Nothing is left to wake for: the next wake-up is a heartbeat away.
  EXPECT_GT(scheduler_.NextWakeup(now_), now_);
}

// ---- slots, priorities, owners -------------------------------------------------

TEST_F(SchedulerTest, SlotsCapWhatAWorkerRunsAcrossJobsAndTurnRoundRobin) {
  Hello("w1", 8, 100);
  // A worker with one slot: its Hello says so.
  pb::Envelope hello = NewEnvelope();
  hello.mutable_hello()->set_worker_id("one");
  hello.mutable_hello()->set_host("host");
  hello.mutable_hello()->set_pid(7);
  hello.mutable_hello()->set_concurrency(8);
  hello.mutable_hello()->set_slots(2);
  scheduler_.OnWorkerMessage("one", hello, now_);
  scheduler_.OnWorkerMessage(
      "w1",
      [] {
        pb::Envelope drain = NewEnvelope();
        drain.mutable_drain()->set_reason("test");
        return drain;
      }(),
      now_);
  const std::string big = Submit("c1", Spec(pb::THREADS, 300));
  auto first = Dispatch()["one"];
  ASSERT_EQ(first.size(), 2u) << "two slots, whatever the job's credit";
  const std::string small = Submit("c2", Spec(pb::THREADS, 3));
  EXPECT_TRUE(Dispatch().empty()) << "no slot free";
  // As slots free, the two jobs take them in turn.
  std::vector<std::string> order;
  std::vector<pb::Task> running = first;
  for (int i = 0; i < 6; ++i) {
    Finish("one", running.front());
    running.erase(running.begin());
    auto next = Dispatch()["one"];
    ASSERT_EQ(next.size(), 1u);
    order.push_back(next[0].job_id());
    running.push_back(next[0]);
  }
  EXPECT_EQ(order, (std::vector<std::string>{small, big, small, big, small, big}))
      << "round-robin between jobs of equal priority";
}

TEST_F(SchedulerTest, ATaskOfAnEndedJobAWorkerStillRunsHoldsASlotAndIsToldToStop) {
  // Found by the simulator (seed 23): a worker we declared dead comes back
  // still running a task of a job that has since ended.
  pb::Envelope hello = NewEnvelope();
  hello.mutable_hello()->set_worker_id("one");
  hello.mutable_hello()->set_host("host");
  hello.mutable_hello()->set_pid(7);
  hello.mutable_hello()->set_concurrency(8);
  hello.mutable_hello()->set_slots(2);
  pb::TaskRef* held = hello.mutable_hello()->add_holding();
  held->set_job_id("gone-1");
  held->set_index(5);
  held->set_attempt(1);
  scheduler_.OnWorkerMessage("one", hello, now_);
  bool stopped = false;
  for (const Outgoing& o : Workers()) {
    stopped |= o.envelope.has_stop() && o.envelope.stop().job_id() == "gone-1";
  }
  EXPECT_TRUE(stopped) << "it is told to stop what no job wants";
  Submit("c1", Spec(pb::THREADS, 10));
  EXPECT_EQ(Dispatch()["one"].size(), 1u) << "one slot of two is still taken";
  pb::Task old;
  old.set_job_id("gone-1");
  old.set_index(5);
  old.set_attempt(1);
  Finish("one", old, false);
  EXPECT_EQ(Dispatch()["one"].size(), 1u) << "its report frees the slot";
}

TEST_F(SchedulerTest, AHigherPriorityTakesEveryFreeSlotFirst) {
  pb::Envelope hello = NewEnvelope();
  hello.mutable_hello()->set_worker_id("one");
  hello.mutable_hello()->set_host("host");
  hello.mutable_hello()->set_pid(7);
  hello.mutable_hello()->set_concurrency(8);
  hello.mutable_hello()->set_slots(1);
  scheduler_.OnWorkerMessage("one", hello, now_);
  pb::JobSpec low = Spec(pb::THREADS, 5);
  low.set_priority(0);
  pb::JobSpec high = Spec(pb::THREADS, 5);
  high.set_priority(9);
  const std::string low_id = Submit("c1", low);
  auto running = Dispatch()["one"];
  ASSERT_EQ(running.size(), 1u);
  const std::string high_id = Submit("c2", high);
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) {
    Finish("one", running[0]);
    running = Dispatch()["one"];
    ASSERT_EQ(running.size(), 1u);
    order.push_back(running[0].job_id());
  }
  EXPECT_EQ(order, (std::vector<std::string>{high_id, high_id, high_id, high_id, high_id, low_id}));
}

TEST_F(SchedulerTest, WithoutSlotsEveryJobGetsItsOwnCredit) {
  Hello("w1", 4);
  Submit("c1", Spec(pb::THREADS, 10));
  Submit("c2", Spec(pb::THREADS, 10));
  EXPECT_EQ(Dispatch()["w1"].size(), 8u) << "4 of each: today's behaviour";
}

TEST_F(SchedulerTest, AnOrphanIsCancelledButADetachedJobRunsOn) {
  Hello("w1", 1);
  const std::string orphan = Submit("c1", Spec(pb::SYNC, 50));
  pb::JobSpec spec = Spec(pb::SYNC, 50);
  spec.set_detached(true);
  const std::string detached = Submit("c2", spec);
  Dispatch();
  for (int i = 0; i < 25; ++i) {  // 12.5 s: past the 10 s client liveness
    Advance(milliseconds(500));
    Heartbeat("w1");
    scheduler_.Tick(now_);
  }
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->reason(), "the client went away");
  EXPECT_EQ(scheduler_.job_count(), 1u) << "the detached job runs on";
  EXPECT_EQ(JobDone("c2"), nullptr) << "nobody follows a detached job";
}

TEST_F(SchedulerTest, AResumedJobWaitsForItsClientAndEndsIfItDoesNotComeBack) {
  JournaledJob waiting{.id = "old-1",
                       .client = "gone",
                       .spec = Spec(pb::SYNC, 3),
                       .accepted_us = 1'000'000,
                       .results = {},
                       .done = {},
                       .ended_us = 0};
  JournaledJob detached = waiting;
  detached.id = "old-2";
  detached.spec.set_detached(true);
  scheduler_.Restore(waiting, now_);
  scheduler_.Restore(detached, now_);
  Hello("w1", 4);
  Hello("w2", 4, 101);
  auto sent = Dispatch();
  size_t tasks = 0;
  for (auto& [peer, list] : sent) {
    for (const pb::Task& t : list) {
      ++tasks;
      EXPECT_EQ(t.job_id(), "old-2") << "only the detached job runs before its client is back";
    }
  }
  EXPECT_EQ(tasks, 2u);
  // Its client comes back (as owner): it runs again.
  pb::Envelope watch = NewEnvelope();
  watch.mutable_watch()->set_job_id("old-1");
  watch.mutable_watch()->set_owner(true);
  scheduler_.OnClientMessage("back", watch, now_);
  EXPECT_FALSE(Dispatch().empty());
  // Another resumed job whose client never comes back ends unrun.
  JournaledJob lonely = waiting;
  lonely.id = "old-3";
  scheduler_.Restore(lonely, now_);
  for (int i = 0; i < 25; ++i) {
    Advance(milliseconds(500));
    Heartbeat("w1");
    Heartbeat("w2");
    Heartbeat("back");
    scheduler_.OnClientMessage(
        "back",
        [] {
          pb::Envelope hb = NewEnvelope();
          hb.mutable_heartbeat();
          return hb;
        }(),
        now_);
    scheduler_.Tick(now_);
    Dispatch();
  }
  pb::Envelope jobs = NewEnvelope();
  jobs.mutable_jobs()->set_all(true);
  scheduler_.OnClientMessage("back", jobs, now_);
  bool ended = false;
  for (const Outgoing& o : Clients()) {
    if (!o.envelope.has_jobs_reply()) continue;
    for (const pb::JobInfo& j : o.envelope.jobs_reply().jobs()) {
      if (j.job_id() != "old-3") continue;
      ended = true;
      EXPECT_EQ(j.state(), "cancelled");
      EXPECT_EQ(j.reason(), "the client went away");
      EXPECT_EQ(j.ok(), 0u) << "nothing of it ran";
    }
  }
  EXPECT_TRUE(ended);
}

TEST_F(SchedulerTest, AnyClientMayCancelAJobAndItsWorkersAreToldToStop) {
  Hello("w1", 4);
  const std::string job = Submit("c1", Spec(pb::THREADS, 10));
  const std::vector<pb::Task> sent = Dispatch()["w1"];
  ASSERT_EQ(sent.size(), 4u);
  pb::Envelope cancel = NewEnvelope();
  cancel.mutable_cancel()->set_job_id(job);
  cancel.mutable_cancel()->set_reason("wrong input");
  cancel.mutable_cancel()->mutable_by()->set_host("laptop");
  cancel.mutable_cancel()->mutable_by()->set_pid(42);
  cancel.mutable_cancel()->mutable_by()->set_user("alice");
  scheduler_.OnClientMessage("other", cancel, now_);
  ASSERT_NE(JobDone("c1"), nullptr);
  EXPECT_EQ(JobDone("c1")->reason(), "cancelled by alice@laptop (pid 42): wrong input");
  ASSERT_NE(JobDone("other"), nullptr) << "the canceller hears the end too";
  bool stopped = false;
  for (const Outgoing& o : Workers()) stopped |= o.peer == "w1" && o.envelope.has_stop();
  EXPECT_TRUE(stopped) << "the worker running its tasks is told to stop them";
  // A task that cannot stop at once still takes its slot: the claims go as
  // the worker reports each one stopped.
  EXPECT_EQ(InFlight("w1"), 4u);
  for (const pb::Task& t : sent) Finish("w1", t, false);
  EXPECT_EQ(InFlight("w1"), 0u);
}

TEST_F(SchedulerTest, JobsAreListedRunningThenEnded) {
  Hello("w1", 1);
  pb::JobSpec spec = Spec(pb::SYNC, 2);
  spec.set_priority(7);
  spec.mutable_origin()->set_host("laptop");
  const std::string job = Submit("c1", spec);
  auto sent = Dispatch()["w1"];
  auto list = [&](bool all) {
    pb::Envelope request = NewEnvelope();
    request.mutable_jobs()->set_all(all);
    scheduler_.OnClientMessage("lister", request, now_);
    for (const Outgoing& o : Clients()) {
      if (o.envelope.has_jobs_reply()) return o.envelope.jobs_reply();
    }
    return pb::JobsReply();
  };
  pb::JobsReply running = list(false);
  ASSERT_EQ(running.jobs_size(), 1);
  EXPECT_EQ(running.jobs(0).state(), "running");
  EXPECT_EQ(running.jobs(0).priority(), 7u);
  EXPECT_EQ(running.jobs(0).running(), 1u);
  EXPECT_EQ(running.jobs(0).origin().host(), "laptop");
  Finish("w1", sent[0]);
  Finish("w1", Dispatch()["w1"][0]);
  EXPECT_EQ(list(false).jobs_size(), 0);
  pb::JobsReply all = list(true);
  ASSERT_EQ(all.jobs_size(), 1);
  EXPECT_EQ(all.jobs(0).state(), "done");
  EXPECT_EQ(all.jobs(0).ok(), 2u);
}

}  // namespace
}  // namespace fanout::coordinator
