// Faults with real processes: workers SIGKILLed every 0.7 s (and replaced)
// while a bank job and a web job run, the ledger killed once, the coordinator
// killed and restarted mid-job, and SIGTERM to the coordinator. Every task
// still completes exactly once and every dollar is where it should be.
//
// The tests print their numbers (kills, re-dispatched tasks, duplicates
// dropped, wall time against the same job without kills) for the record.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <random>
#include <thread>

#include "client/job_client.h"
#include "client/local_cluster.h"
#include "jobs/bank/bank.h"
#include "pokedex/site.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// SIGKILLs a random live worker of `cluster` every `every` and starts a
// replacement; kills `ledger` (and restarts it) once, on the second round.
class Killer {
 public:
  Killer(client::LocalCluster& cluster, client::LocalService* ledger, Duration every)
      : cluster_(cluster), ledger_(ledger), every_(every), thread_([this] { Run(); }) {}
  ~Killer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int kills() const { return kills_; }
  bool ledger_restarted() const { return ledger_restarted_; }

 private:
  void Run() {
    std::mt19937 rng(12345);
    for (int round = 1; !stop_; ++round) {
      for (TimePoint until = Now() + every_; Now() < until && !stop_;) {
        std::this_thread::sleep_for(milliseconds(10));
      }
      if (stop_) return;
      std::vector<Subprocess*> live;
      for (Subprocess& w : cluster_.workers()) {
        if (w.Running()) live.push_back(&w);
      }
      if (!live.empty()) {
        live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng)]->Kill();
        ++kills_;
        EXPECT_TRUE(cluster_.AddWorker().ok());
      }
      if (round == 2 && ledger_ != nullptr) {
        ledger_->process().Kill();
        std::this_thread::sleep_for(milliseconds(200));
        ledger_restarted_ = ledger_->Restart().ok();
      }
    }
  }

  client::LocalCluster& cluster_;
  client::LocalService* ledger_;
  Duration every_;
  std::atomic<bool> stop_ = false;
  std::atomic<int> kills_ = 0;
  std::atomic<bool> ledger_restarted_ = false;
  std::thread thread_;
};

struct JobRun {
  client::JobReport report;
  pb::StatusReply stats;
};

JobRun RunJob(client::LocalCluster& cluster, const pb::JobSpec& spec) {
  client::JobClient client({.endpoint = cluster.clients_endpoint()});
  client::JobObserver quiet;
  Result<client::JobReport> report = client.Run(spec, quiet);
  EXPECT_TRUE(report.ok()) << report.error().message;
  Result<pb::StatusReply> stats = client.Status();
  EXPECT_TRUE(stats.ok());
  return {report ? *report : client::JobReport{}, stats ? *stats : pb::StatusReply{}};
}

void Print(const std::string& what, const JobRun& calm, const JobRun& chaos, int kills) {
  std::cout << fmt::format(
      "chaos {}: {} kills, {} tasks re-dispatched, {} duplicate results dropped, {} workers "
      "lost; wall {:.0f} ms against {:.0f} ms without kills\n",
      what, kills, chaos.stats.tasks_requeued() - calm.stats.tasks_requeued(),
      chaos.stats.duplicates_dropped() - calm.stats.duplicates_dropped(),
      chaos.stats.workers_lost() - calm.stats.workers_lost(), chaos.report.wall_ms,
      calm.report.wall_ms);
}

void ExpectEachTaskOnce(const client::JobReport& report) {
  EXPECT_EQ(report.duplicate_results, 0u);
  for (const client::TaskRecord& t : report.tasks) {
    EXPECT_TRUE(t.done) << "task " << t.index << " has no result";
    EXPECT_TRUE(t.result.ok()) << "task " << t.index << ": " << t.result.error();
  }
}

TEST(ChaosTest, BankJobLosesNoDollarWithWorkersKilledEvery700msAndTheLedgerOnce) {
  auto dir = client::TempDir::Make("chaos-bank");
  ASSERT_TRUE(dir.ok());
  auto ledger = client::StartLedger(
      FanoutBinary(),
      {"--endpoint", fmt::format("tcp://127.0.0.1:{}", FreePort()), "--db", *dir / "ledger.db"});
  ASSERT_TRUE(ledger.ok()) << ledger.error().message;
  client::ClusterOptions options = ClusterWith(3);
  options.coordinator_flags = {"--ledger", (*ledger)->address()};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;

  pb::JobSpec spec;
  spec.set_model(pb::THREADS);
  spec.set_concurrency(2);
  spec.set_count(1000);
  spec.set_max_attempts(20);  // a transfer may sit on several victims in a row
  pb::BankJob* bank = spec.mutable_bank();
  bank->set_accounts(10);
  bank->set_initial(1'000'000);  // no overdraft: every transfer must apply
  bank->set_amount_max(100);
  bank->set_seed(7);
  bank->set_mode(pb::ATOMIC);
  bank->set_verify_ms(15);

  const JobRun calm = RunJob(**cluster, spec);
  ASSERT_EQ(calm.report.done.ok(), 1000u);
  Killer killer(**cluster, ledger->get(), milliseconds(700));
  const JobRun chaos = RunJob(**cluster, spec);
  killer.Stop();
  Print("bank", calm, chaos, killer.kills());

  EXPECT_GE(killer.kills(), 3) << "the job ended before the chaos got going";
  EXPECT_TRUE(killer.ledger_restarted());
  EXPECT_EQ(chaos.report.done.ok(), 1000u);
  ExpectEachTaskOnce(chaos.report);
  // Every planned transfer applied exactly once: the closing balances are
  // the opening ones plus each movement, and the sum is exact.
  std::map<std::string, int64_t> expected;
  for (uint32_t i = 1; i <= 10; ++i) expected[fmt::format("bank_{}", i)] = 1'000'000;
  for (uint32_t i = 1; i <= 1000; ++i) {
    const jobs::bank::PlannedTransfer t = jobs::bank::PlanTransfer(*bank, i);
    expected[fmt::format("bank_{}", t.from)] -= t.amount;
    expected[fmt::format("bank_{}", t.to)] += t.amount;
  }
  const pb::LedgerSnapshot& book = chaos.report.done.ledger();
  EXPECT_EQ(book.error(), "");
  EXPECT_EQ(book.sum(), 10'000'000);
  const std::map<std::string, int64_t> got(book.balances().begin(), book.balances().end());
  EXPECT_EQ(got, expected);
}

TEST(ChaosTest, WebJobGetsEveryPageWithAFlakySiteAndWorkersKilledEvery700ms) {
  auto site = client::StartSite(FanoutBinary(),
                                {"--fail-rate", "0.2", "--seed", "11", "--latency-ms", "20"});
  ASSERT_TRUE(site.ok()) << site.error().message;
  auto cluster = client::LocalCluster::Start(ClusterWith(3));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;

  pb::JobSpec spec;
  spec.set_model(pb::THREADS);
  spec.set_concurrency(2);
  spec.set_count(151);
  spec.set_max_attempts(20);
  pb::WebJob* web = spec.mutable_web();
  web->set_url_template((*site)->address() + "/pokedex/{n}");
  web->set_start(1);
  web->set_retries(8);
  web->set_timeout_ms(5000);

  const JobRun calm = RunJob(**cluster, spec);
  ASSERT_EQ(calm.report.done.ok(), 151u);
  Killer killer(**cluster, nullptr, milliseconds(700));
  const JobRun chaos = RunJob(**cluster, spec);
  killer.Stop();
  Print("web", calm, chaos, killer.kills());

  EXPECT_GE(killer.kills(), 2) << "the job ended before the chaos got going";
  EXPECT_EQ(chaos.report.done.ok(), 151u);
  ExpectEachTaskOnce(chaos.report);
  for (const client::TaskRecord& t : chaos.report.tasks) {
    EXPECT_EQ(t.result.text(), pokedex::Pokedex()[t.index - 1].name) << "page " << t.index;
  }
}

// Restarts the coordinator once `after` tasks are done.
class RestartCoordinator : public client::JobObserver {
 public:
  RestartCoordinator(client::LocalCluster& cluster, uint32_t after)
      : cluster_(cluster), after_(after) {}
  void OnDone(const client::JobReport& report, const client::TaskRecord&) override {
    if (report.finished != after_ || restarted_) return;
    cluster_.coordinator().Kill();
    std::this_thread::sleep_for(milliseconds(300));
    restarted_ = cluster_.RestartCoordinator().ok();
  }
  bool restarted_ = false;

 private:
  client::LocalCluster& cluster_;
  uint32_t after_;
};

pb::JobSpec MathJob(uint32_t count, uint64_t iterations) {
  return client::MathJob(pb::SYNC, count, iterations);
}

TEST(ChaosTest, MathJobResumesWhenTheCoordinatorIsKilledAndRestarted) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  const pb::JobSpec spec = MathJob(20, 5'000'000);
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  RestartCoordinator restart(**cluster, 6);
  Result<client::JobReport> report = client.Run(spec, restart);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(restart.restarted_);
  EXPECT_EQ(report->done.ok(), 20u);
  ExpectEachTaskOnce(*report);
  for (const client::TaskRecord& t : report->tasks) {
    EXPECT_EQ(t.result.number(), t.index + 5'000'000.0) << "task " << t.index;
  }
  const std::string log = ReadFile((*cluster)->dir() + "/coordinator-2.log");
  EXPECT_NE(log.find("resumed from the journal"), std::string::npos) << log;
  // The restarted coordinator knows both workers again without a restart.
  auto status = client.Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->workers_size(), 2);
}

TEST(ChaosTest, WithoutAJournalAKilledCoordinatorsJobIsReportedLost) {
  client::ClusterOptions options = ClusterWith(1);
  options.coordinator_flags = {"--journal", ""};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  RestartCoordinator restart(**cluster, 2);
  Result<client::JobReport> report = client.Run(MathJob(20, 5'000'000), restart);
  EXPECT_TRUE(restart.restarted_);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, Error::Code::kUnavailable);
  EXPECT_NE(report.error().message.find("it was lost"), std::string::npos)
      << report.error().message;
}

TEST(ChaosTest, ASecondCoordinatorOnTheSameJournalRefusesToStart) {
  auto dir = client::TempDir::Make("chaos-journal");
  ASSERT_TRUE(dir.ok());
  const std::string journal = *dir / "coordinator.db";
  Background first =
      StartFanout({"coordinator", "--workers-endpoint", "tcp://127.0.0.1:*", "--clients-endpoint",
                   "tcp://127.0.0.1:*", "--journal", journal, "--ready-file", *dir / "ready"});
  ASSERT_TRUE(client::WaitForFile(*dir / "ready", first.process, seconds(10)).ok());
  CommandResult second =
      RunFanout({"coordinator", "--workers-endpoint", "tcp://127.0.0.1:*", "--clients-endpoint",
                 "tcp://127.0.0.1:*", "--journal", journal},
                seconds(10));
  EXPECT_EQ(second.status, 1);
  EXPECT_NE(second.err.find("the journal " + journal + " is in use by another coordinator"),
            std::string::npos)
      << second.err;
  EXPECT_TRUE(first.process.Running());
}

TEST(ChaosTest, SigtermToTheCoordinatorLetsRunningJobsFinishThenExits0) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  class TermAfter : public client::JobObserver {
   public:
    TermAfter(client::LocalCluster& c) : c_(c) {}
    void OnDone(const client::JobReport& report, const client::TaskRecord&) override {
      if (report.finished != 2) return;
      c_.coordinator().Signal(SIGTERM);
      // A new job is turned away while the running one goes on.
      CommandResult r = RunFanout(
          {"submit", "math", "--coordinator", c_.clients_endpoint(), "--count", "1", "--json"});
      rejected_ = r.status == 3 && r.err.find("shutting down") != std::string::npos;
      EXPECT_TRUE(rejected_) << r.status << " " << r.err;
    }
    client::LocalCluster& c_;
    bool rejected_ = false;
  } term(**cluster);
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  Result<client::JobReport> report = client.Run(MathJob(12, 3'000'000), term);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->done.ok(), 12u);
  EXPECT_EQ(report->done.reason(), "");
  EXPECT_TRUE(term.rejected_);
  EXPECT_EQ((*cluster)->coordinator().Wait(seconds(10)), 0);
}

TEST(ChaosTest, JobsPastTheCoordinatorsGracePeriodEndWithAReason) {
  client::ClusterOptions options = ClusterWith(1);
  options.coordinator_flags = {"--grace-s", "0.5"};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  class TermAfterOne : public client::JobObserver {
   public:
    TermAfterOne(Subprocess& c) : c_(c) {}
    void OnDone(const client::JobReport& report, const client::TaskRecord&) override {
      if (report.finished == 1) c_.Signal(SIGTERM);
    }
    Subprocess& c_;
  } term((*cluster)->coordinator());
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  Result<client::JobReport> report = client.Run(MathJob(40, 3'000'000), term);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_LT(report->done.ok(), 40u);
  EXPECT_EQ(report->done.reason(), "the coordinator stopped: its grace period of 0 s ended");
  EXPECT_EQ((*cluster)->coordinator().Wait(seconds(10)), 0);
}

TEST(ChaosTest, AStuckTaskRunsElsewhereThenFailsNamingEachAttempt) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  // One task of some seconds against a 0.4 s deadline: both workers stay
  // alive (heartbeating) but overrun, so each attempt ends on the deadline.
  CommandResult r = RunFanout({"submit", "math", "--coordinator", (*cluster)->clients_endpoint(),
                               "--count", "1", "--iterations", "40000000", "--task-timeout-ms",
                               "400", "--max-attempts", "2", "--json"});
  EXPECT_EQ(r.status, 1) << r.err;
  const nlohmann::json j = r.Json();
  EXPECT_EQ(j["failed"], 1);
  const std::string error = j["results"][0]["error"];
  EXPECT_EQ(error.rfind("gave up after 2 attempts: worker worker-", 0), 0u) << error;
  for (const char* w : {"worker-1 ran past the 0.4 s deadline", "worker-2 ran past"}) {
    EXPECT_NE(error.find(w), std::string::npos) << error;
  }
  EXPECT_LT(j["wall_ms"].get<double>(), 3000) << "the deadline did not cut the wait short";
}

// A poison task: whichever worker runs task 7 dies (the test SIGKILLs it the
// moment the task is dispatched, as a crash would) and a replacement joins.
// The task fails after --max-attempts naming each worker lost, and the
// rest of the job finishes: it is not retried forever.
class PoisonTask : public client::JobObserver {
 public:
  PoisonTask(client::LocalCluster& cluster, uint32_t index) : cluster_(cluster), index_(index) {}
  void OnDispatched(const client::JobReport&, const client::TaskRecord& task, uint32_t) override {
    if (task.index != index_) return;
    // LocalCluster names its workers worker-1, worker-2, ... in start order.
    const size_t n = std::stoul(task.worker.substr(task.worker.rfind('-') + 1));
    ASSERT_LE(n, cluster_.workers().size()) << task.worker;
    cluster_.workers()[n - 1].Kill();
    victims.push_back(task.worker);
    EXPECT_TRUE(cluster_.AddWorker().ok());
  }
  std::vector<std::string> victims;

 private:
  client::LocalCluster& cluster_;
  uint32_t index_;
};

TEST(ChaosTest, ATaskThatKillsEachWorkerItRunsOnFailsAfterMaxAttemptsAndTheRestFinish) {
  auto cluster = client::LocalCluster::Start(ClusterWith(3));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  pb::JobSpec spec = client::MathJob(pb::SYNC, 12, 2'000'000);  // ~0.1 s a task
  spec.set_max_attempts(3);

  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  PoisonTask poison(**cluster, 7);
  Result<client::JobReport> report = client.Run(spec, poison);
  ASSERT_TRUE(report.ok()) << report.error().message;

  ASSERT_EQ(poison.victims.size(), 3u) << "task 7 ran more or less often than --max-attempts";
  EXPECT_EQ(report->done.ok(), 11u);
  EXPECT_EQ(report->done.failed(), 1u);
  const client::TaskRecord& t7 = report->tasks[6];
  ASSERT_EQ(t7.index, 7u);
  ASSERT_TRUE(t7.done);
  const std::string error = t7.result.error();
  EXPECT_EQ(error.rfind("gave up after 3 attempts: worker ", 0), 0u) << error;
  for (const std::string& victim : poison.victims) {
    EXPECT_NE(error.find(fmt::format("worker {} stopped answering", victim)), std::string::npos)
        << error;
  }
  for (const client::TaskRecord& t : report->tasks) {
    if (t.index == 7) continue;
    EXPECT_TRUE(t.result.ok()) << "task " << t.index << ": " << t.result.error();
  }
}

}  // namespace
}  // namespace fanout::testing
