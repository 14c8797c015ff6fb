// The core, end to end: a real coordinator and real workers as processes on
// free loopback ports, driven through `fanout submit` and the client library.

#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>
#include <thread>

#include "client/job_client.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kIterations = 200'000;

// Checks the --json summary of a math job of `count` tasks from `start`.
void ExpectMathValues(const nlohmann::json& j, uint32_t count, double start, int64_t iterations) {
  ASSERT_TRUE(j.is_object()) << "no JSON on the last line";
  EXPECT_EQ(j["kind"], "math");
  EXPECT_EQ(j["tasks"], count);
  EXPECT_EQ(j["ok"], count);
  EXPECT_EQ(j["failed"], 0);
  ASSERT_EQ(j["results"].size(), count);
  for (uint32_t i = 0; i < count; ++i) {
    const auto& r = j["results"][i];
    EXPECT_EQ(r["index"], i + 1);
    EXPECT_EQ(r["ok"], true);
    EXPECT_EQ(r["value"].get<double>(), start + i + static_cast<double>(iterations))
        << "task " << i + 1;
    EXPECT_TRUE(r["error"].is_null());
  }
}

std::vector<std::string> MathArgs(const client::LocalCluster& cluster, const std::string& model,
                                  uint32_t count, int64_t iterations) {
  return {"submit",        "math",
          "--coordinator", cluster.clients_endpoint(),
          "--model",       model,
          "--count",       std::to_string(count),
          "--iterations",  std::to_string(iterations),
          "--json"};
}

TEST(CoreTest, TwentyMathTasksOnTwoWorkersUnderEachModel) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  for (const std::string model : {"sync", "threads", "async"}) {
    SCOPED_TRACE(model);
    CommandResult r = RunFanout(MathArgs(**cluster, model, 20, kIterations));
    ASSERT_EQ(r.status, 0) << r.err;
    const nlohmann::json j = r.Json();
    ExpectMathValues(j, 20, 1, kIterations);
    EXPECT_EQ(j["model"], model);
    EXPECT_EQ(j["workers_used"], 2) << "20 tasks should reach both workers";
  }
}

TEST(CoreTest, TheArticlesJobGivesItsExactValues) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult r = RunFanout(MathArgs(**cluster, "threads", 20, 2'000'000));
  ASSERT_EQ(r.status, 0) << r.err;
  ExpectMathValues(r.Json(), 20, 1, 2'000'000);  // 2000001.0 ... 2000020.0
}

TEST(CoreTest, PrintsTheArticlesLogForPeople) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  std::vector<std::string> args = MathArgs(**cluster, "sync", 5, 1000);
  args.pop_back();  // no --json
  CommandResult r = RunFanout(args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Doing math, starting_number=3..."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Done with math, starting_number=3."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1001.0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("The job ran in "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos) << "no colour when not a terminal";
}

// Kills a worker (SIGKILL) once `after` tasks are done.
class KillAfter : public client::JobObserver {
 public:
  KillAfter(Subprocess& victim, uint32_t after) : victim_(victim), after_(after) {}
  void OnDone(const client::JobReport& report, const client::TaskRecord&) override {
    if (report.finished == after_ && victim_.Running()) victim_.Kill();
  }

 private:
  Subprocess& victim_;
  uint32_t after_;
};

TEST(CoreTest, CompareRunsTheMathJobUnderEveryModelAndJudgesItsValues) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  std::vector<std::string> args = MathArgs(**cluster, "sync", 8, kIterations);
  args.push_back("--compare");
  CommandResult r = RunFanout(args);
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = r.Json();
  ASSERT_EQ(j["runs"].size(), 4u) << r.out;
  for (const auto& run : j["runs"]) EXPECT_EQ(run["result"], "all 8 values right") << run;
  EXPECT_EQ(j["runs"][3]["label"], "sync x2");
  EXPECT_NE(r.err.find("speed-up"), std::string::npos) << "the table, for people, on stderr";
}

TEST(CoreTest, WorkerKilledMidJobAndEveryTaskStillCompletesExactlyOnce) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  pb::JobSpec spec;
  spec.set_model(pb::SYNC);
  spec.set_count(20);
  spec.mutable_math()->set_start(1);
  spec.mutable_math()->set_iterations(1'000'000);
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  KillAfter killer((*cluster)->workers()[0], 4);
  Result<client::JobReport> report = client.Run(spec, killer);
  ASSERT_TRUE(report.ok()) << report.error().message;

  EXPECT_FALSE((*cluster)->workers()[0].Running());
  EXPECT_EQ(report->done.ok(), 20u);
  EXPECT_EQ(report->duplicate_results, 0u);
  uint32_t rerun = 0;
  for (const client::TaskRecord& t : report->tasks) {
    ASSERT_TRUE(t.done) << "task " << t.index;
    EXPECT_EQ(t.result.number(), t.index + 1'000'000.0);
    if (t.result.attempt() > 1) {
      ++rerun;
      EXPECT_EQ(t.result.worker_id(), "worker-2") << "re-run on the survivor";
    }
  }
  EXPECT_GE(rerun, 1u) << "the killed worker held a task that had to run again";
}

TEST(CoreTest, WorkerStartedBeforeTheCoordinatorJoinsWhenItComesUp) {
  const std::string workers_at = fmt::format("tcp://127.0.0.1:{}", FreePort());
  Background worker = StartFanout({"worker", "--coordinator", workers_at, "--id", "early"});
  std::this_thread::sleep_for(milliseconds(800));  // it finds nobody and keeps trying

  const std::string ready = ::testing::TempDir() + "/early-coordinator.ready";
  std::remove(ready.c_str());
  Background coordinator =
      StartFanout({"coordinator", "--workers-endpoint", workers_at, "--clients-endpoint",
                   "tcp://127.0.0.1:*", "--ready-file", ready, "--journal", ""});
  Result<std::string> text = client::WaitForFile(ready, coordinator.process, seconds(10));
  ASSERT_TRUE(text.ok()) << text.error().message;
  const std::string clients_at = nlohmann::json::parse(*text)["clients"];

  CommandResult r = RunFanout({"submit", "math", "--coordinator", clients_at, "--count", "4",
                               "--iterations", "1000", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = r.Json();
  ExpectMathValues(j, 4, 1, 1000);
  EXPECT_EQ(j["results"][0]["worker"], "early");
}

TEST(CoreTest, TwoClientsAtOnceEachGetTheirOwnResults) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  std::vector<std::string> a = MathArgs(**cluster, "threads", 10, kIterations);
  std::vector<std::string> b = MathArgs(**cluster, "async", 12, kIterations);
  a.insert(a.end(), {"--start", "1"});
  b.insert(b.end(), {"--start", "101"});
  Background first = StartFanout(a);
  Background second = StartFanout(b);
  CommandResult ra = first.Finish();
  CommandResult rb = second.Finish();
  ASSERT_EQ(ra.status, 0) << ra.err;
  ASSERT_EQ(rb.status, 0) << rb.err;
  ExpectMathValues(ra.Json(), 10, 1, kIterations);
  ExpectMathValues(rb.Json(), 12, 101, kIterations);
  EXPECT_NE(ra.Json()["job_id"], rb.Json()["job_id"]);
}

TEST(CoreTest, SigtermDrainsAWorkerThatFinishesWhatItHas) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  pb::JobSpec spec;
  spec.set_model(pb::THREADS);
  spec.set_concurrency(2);
  spec.set_count(12);
  spec.mutable_math()->set_start(1);
  spec.mutable_math()->set_iterations(2'000'000);

  // SIGTERM worker-1 once two tasks are done: it has two more running.
  class TermAfterTwo : public client::JobObserver {
   public:
    explicit TermAfterTwo(Subprocess& w) : w_(w) {}
    void OnDone(const client::JobReport& report, const client::TaskRecord&) override {
      if (report.finished == 2) w_.Signal(SIGTERM);
    }
    Subprocess& w_;
  } term((*cluster)->workers()[0]);

  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  Result<client::JobReport> report = client.Run(spec, term);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->done.ok(), 12u);
  for (const client::TaskRecord& t : report->tasks) {
    EXPECT_EQ(t.result.attempt(), 1u) << "task " << t.index << ": a drained task is never re-run";
  }
  EXPECT_EQ((*cluster)->workers()[0].Wait(seconds(10)), 0) << "a drained worker exits 0";
  const std::string log = ReadFile((*cluster)->dir() + "/worker-1.log");
  EXPECT_NE(log.find("drained"), std::string::npos) << log;
}

TEST(CoreTest, SubmitWithNoCoordinatorExits3WithOneLine) {
  const TimePoint start = Now();
  CommandResult r =
      RunFanout({"submit", "math", "--coordinator", fmt::format("tcp://127.0.0.1:{}", FreePort()),
                 "--connect-timeout-ms", "500"});
  EXPECT_EQ(r.status, 3);
  EXPECT_LT(Now() - start, seconds(5)) << "never a hang";
  EXPECT_NE(r.err.find("did not answer within 0.5 s"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CoreTest, BadUsageExits2WithOneLine) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  const std::vector<std::vector<std::string>> cases = {
      {"submit", "math", "--model", "greenlets"},
      {"submit", "poetry"},
      {"submit", "math", "--count", "0"},
      {"submit", "math", "--iterations", "-5"},
      {"submit", "math", "--count", "1000000000", "--coordinator", (*cluster)->clients_endpoint()},
      {"worker", "--threads", "0"},
      {"frobnicate"},
  };
  for (const auto& args : cases) {
    CommandResult r = RunFanout(args);
    EXPECT_EQ(r.status, 2) << args[1] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(CoreTest, HelpShowsDefaultsAndEnvironment) {
  for (const std::string sub : {"coordinator", "worker", "submit", "status", "demo"}) {
    CommandResult r = RunFanout({sub, "--help"});
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.out.find("Usage: fanout " + sub), std::string::npos) << r.out;
  }
  EXPECT_NE(RunFanout({"coordinator", "--help"})
                .out.find("tcp://127.0.0.1:5555 (Env:FANOUT_WORKERS_ENDPOINT)"),
            std::string::npos);
  EXPECT_NE(RunFanout({"worker", "--help"}).out.find("(Env:FANOUT_COORDINATOR)"),
            std::string::npos);
  EXPECT_NE(RunFanout({"--help"}).out.find("--keys TEXT:DIR (Env:FANOUT_KEYS)"), std::string::npos);
}

}  // namespace
}  // namespace fanout::testing
