// Operating fanout from the command line, with real processes: detached
// jobs, `fanout jobs`, `watch`, `result` and `cancel` from other terminals,
// slots shared by priority and in turn, orphaned jobs, restarts.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <thread>

#include "client/job_client.h"
#include "common/subprocess.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<std::string> With(const client::LocalCluster& cluster, std::vector<std::string> args) {
  // After the (sub)command's own words, before any `--` and its command line.
  auto at = std::find(args.begin(), args.end(), "--");
  args.insert(at, {"--coordinator", cluster.clients_endpoint()});
  return args;
}

// `fanout jobs --all --json`, as a map by job id.
std::map<std::string, nlohmann::json> Jobs(const client::LocalCluster& cluster) {
  CommandResult r = RunFanout(With(cluster, {"jobs", "--all", "--json"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << "--json prints nothing on stderr: " << r.err;
  std::map<std::string, nlohmann::json> out;
  const nlohmann::json list = nlohmann::json::parse(r.out, nullptr, false);
  if (!list.is_array()) return out;
  for (const auto& j : list) out[j["job_id"].get<std::string>()] = j;
  return out;
}

const std::regex kJobId("[0-9a-f]{8}-[0-9]+");

TEST(OperateTest, ADetachedJobRunsWithoutItsClientAndIsListedWatchedAndFetchedLater) {
  client::ClusterOptions options = ClusterWith(2);
  options.worker_flags = {"--allow-exec"};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  // Its commands wait for a gate this test opens once it has seen the job
  // listed, so "while it runs" holds however slow the machine is.
  auto dir = client::TempDir::Make("fanout-operate");
  ASSERT_TRUE(dir.ok());
  const std::string gate = *dir / "gate";
  std::vector<std::string> args = {"submit", "exec", "--detach"};
  for (int i = 1; i <= 6; ++i) args.insert(args.end(), {"--arg", std::to_string(i)});
  args.insert(args.end(),
              {"--", "sh", "-c", "until [ -e \"$1\" ]; do sleep 0.02; done; echo $0", "{}", gate});
  // --detach prints the id alone and exits at once.
  CommandResult detached = RunFanout(With(**cluster, args));
  ASSERT_EQ(detached.status, 0) << detached.err;
  std::string id = detached.out;
  id.erase(id.find_last_not_of('\n') + 1);
  ASSERT_TRUE(std::regex_match(id, kJobId)) << "'" << id << "'";
  // With --json: {"job_id": ...}.
  CommandResult as_json = RunFanout(With(
      **cluster, {"submit", "math", "--count", "1", "--iterations", "10", "--detach", "--json"}));
  ASSERT_EQ(as_json.status, 0);
  EXPECT_TRUE(std::regex_match(as_json.Json()["job_id"].get<std::string>(), kJobId));

  // It is listed while it runs...
  std::map<std::string, nlohmann::json> jobs = Jobs(**cluster);
  ASSERT_TRUE(jobs.contains(id));
  EXPECT_EQ(jobs[id]["kind"], "exec");
  EXPECT_TRUE(jobs[id]["state"] == "running" || jobs[id]["state"] == "queued") << jobs[id];
  EXPECT_EQ(jobs[id]["tasks"], 6);
  EXPECT_EQ(jobs[id]["detached"], true);
  std::ofstream(gate) << "open\n";
  // ...followed from anywhere to its end, as its submit would have ended...
  CommandResult watched = RunFanout(With(**cluster, {"watch", id, "--json"}));
  ASSERT_EQ(watched.status, 0) << watched.err;
  const nlohmann::json w = watched.Json();
  EXPECT_EQ(w["job_id"], id);
  EXPECT_EQ(w["ok"], 6);
  ASSERT_EQ(w["results"].size(), 6u);
  EXPECT_EQ(w["results"][5]["value"], "6");
  // ...and its results fetched later: the same object as submit --json.
  CommandResult result = RunFanout(With(**cluster, {"result", id, "--json"}));
  ASSERT_EQ(result.status, 0) << result.err;
  const nlohmann::json r = result.Json();
  EXPECT_EQ(r["ok"], 6);
  EXPECT_EQ(r["results"], w["results"]);
  // And once ended, --all lists it as done.
  EXPECT_EQ(Jobs(**cluster)[id]["state"], "done");
  // Bad ids are one line.
  CommandResult unknown = RunFanout(With(**cluster, {"result", "00000000-1"}));
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.err.find("not known"), std::string::npos) << unknown.err;
}

TEST(OperateTest, CancelFromAnotherTerminalStopsTheRunningCommandsAndTellsTheClient) {
  client::ClusterOptions options = ClusterWith(1);
  options.worker_flags = {"--allow-exec"};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  std::vector<std::string> args = {"submit", "exec", "--model", "async", "--json"};
  for (int i = 0; i < 4; ++i) args.insert(args.end(), {"--arg", "30.0716"});
  args.insert(args.end(), {"--", "sleep"});
  Background job = StartFanout(With(**cluster, args));
  // Wait until its commands run (the sleeps, not this submit), then find its id.
  ASSERT_TRUE(Eventually([] { return ProcessesRunning("sleep 30.0716").size() == 4; }));
  std::string id;
  for (const auto& [job_id, j] : Jobs(**cluster)) {
    if (j["state"] == "running") id = job_id;
  }
  ASSERT_FALSE(id.empty());
  CommandResult cancel = RunFanout(With(**cluster, {"cancel", id, "--reason", "too slow"}));
  ASSERT_EQ(cancel.status, 0) << cancel.err;
  EXPECT_NE(cancel.out.find("cancelled"), std::string::npos) << cancel.out;
  // The commands are killed, not forgotten.
  EXPECT_TRUE(Eventually([] { return ProcessesRunning("sleep 30.0716").empty(); }, seconds(3)));
  // The job's own client says who and why, and exits 1.
  CommandResult r = job.Finish(seconds(20));
  EXPECT_EQ(r.status, 1) << r.err;
  const std::string ended = r.Json()["ended_early"];
  EXPECT_TRUE(std::regex_search(ended, std::regex("^cancelled by .* \\(pid [0-9]+\\): too slow$")))
      << ended;
  EXPECT_EQ(Jobs(**cluster)[id]["state"], "cancelled");
  // Cancelling it again says it has ended.
  CommandResult again = RunFanout(With(**cluster, {"cancel", id}));
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("has already ended"), std::string::npos) << again.err;
}

TEST(OperateTest, CtrlCOnWatchStopsWatchingNotTheJob) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult detached = RunFanout(
      With(**cluster, {"submit", "math", "--count", "8", "--iterations", "4000000", "--detach"}));
  ASSERT_EQ(detached.status, 0);
  std::string id = detached.out.substr(0, detached.out.find('\n'));
  Background watch = StartFanout(With(**cluster, {"watch", id}));
  ASSERT_TRUE(Eventually([&] { return ReadFile(watch.out_path).find(id) != std::string::npos; }));
  watch.process.Signal(SIGINT);
  CommandResult r = watch.Finish(seconds(10));
  EXPECT_EQ(r.status, 130);
  EXPECT_NE(r.err.find("it goes on"), std::string::npos) << r.err;
  // The job is still there and ends by itself.
  CommandResult rest = RunFanout(With(**cluster, {"watch", id, "--json"}));
  EXPECT_EQ(rest.status, 0) << rest.err;
  EXPECT_EQ(rest.Json()["ok"], 8);
}

TEST(OperateTest, ASmallJobBehindABigOneOnAOneSlotWorkerFinishesWithinAFewTaskTimes) {
  client::ClusterOptions options = ClusterWith(1);
  options.worker_flags = {"--slots", "1"};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  // 300 tasks of ~20 ms each fill the only slot for ~6 s.
  Background big = StartFanout(With(**cluster, {"submit", "math", "--count", "300", "--iterations",
                                                "200000", "--model", "threads", "--json", "-q"}));
  ASSERT_TRUE(Eventually([&] {
    for (const auto& [id, j] : Jobs(**cluster)) {
      if (j["tasks"] == 300 && j["ok"] > 5) return true;
    }
    return false;
  }));
  CommandResult small = RunFanout(With(
      **cluster, {"submit", "math", "--count", "5", "--iterations", "200000", "--json", "-q"}));
  ASSERT_EQ(small.status, 0) << small.err;
  const nlohmann::json j = small.Json();
  // Round-robin: it took every other slot, not the 300 ahead of it.
  EXPECT_LT(j["wall_ms"].get<double>(), 2000) << "it waited behind the big job";
  const CommandResult b = big.Finish(seconds(60));
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_GT(b.Json()["wall_ms"].get<double>(), j["wall_ms"].get<double>() * 2);
}

TEST(OperateTest, AHighPriorityJobSubmittedAfterALowOneFinishesFirst) {
  client::ClusterOptions options = ClusterWith(1);
  options.worker_flags = {"--slots", "1", "--allow-exec"};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  // A blocker holds the slot until both are queued (a gate this test opens),
  // so both compete however slow the machine is.
  auto dir = client::TempDir::Make("fanout-operate");
  ASSERT_TRUE(dir.ok());
  const std::string gate = *dir / "gate";
  Background blocker =
      StartFanout(With(**cluster, {"submit", "exec", "--arg", gate, "--json", "--", "sh", "-c",
                                   "until [ -e \"$0\" ]; do sleep 0.02; done", "{}"}));
  ASSERT_TRUE(Eventually([&] { return !Jobs(**cluster).empty(); }));
  Background low = StartFanout(With(**cluster, {"submit", "math", "--count", "20", "--iterations",
                                                "300000", "--priority", "0", "--json", "-q"}));
  ASSERT_TRUE(Eventually([&] { return Jobs(**cluster).size() >= 2; }));
  Background high = StartFanout(With(**cluster, {"submit", "math", "--count", "20", "--iterations",
                                                 "300000", "--priority", "9", "--json", "-q"}));
  ASSERT_TRUE(Eventually([&] { return Jobs(**cluster).size() >= 3; }));
  std::ofstream(gate) << "open\n";
  const CommandResult h = high.Finish(seconds(60));
  const CommandResult l = low.Finish(seconds(60));
  EXPECT_EQ(blocker.Finish(seconds(60)).status, 0);
  ASSERT_EQ(h.status, 0) << h.err;
  ASSERT_EQ(l.status, 0) << l.err;
  // Each result's end on the coordinator's clock: every task of the high
  // priority job ended before the low one's first.
  const auto last_end = [](const nlohmann::json& j, bool first) {
    double v = first ? 1e18 : 0;
    for (const auto& r : j["results"]) {
      v = first ? std::min(v, r["end_ms"].get<double>()) : std::max(v, r["end_ms"].get<double>());
    }
    return v;
  };
  const nlohmann::json hj = h.Json(), lj = l.Json();
  const int64_t high_accept = Jobs(**cluster)[hj["job_id"]]["accepted_ms"];
  const int64_t low_accept = Jobs(**cluster)[lj["job_id"]]["accepted_ms"];
  EXPECT_LT(static_cast<double>(high_accept) + last_end(hj, false),
            static_cast<double>(low_accept) + last_end(lj, true) + 1)
      << "a low priority task ran before the high priority job was done";
  EXPECT_EQ(Jobs(**cluster)[hj["job_id"]]["priority"], 9);
}

TEST(OperateTest, AJobWhoseClientIsKilledIsCancelledAfterTheLivenessWindow) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  Background job = StartFanout(With(**cluster, {"submit", "math", "--count", "400", "--iterations",
                                                "2000000", "--model", "sync"}));
  ASSERT_TRUE(Eventually([&] { return !Jobs(**cluster).empty(); }));
  const std::string id = Jobs(**cluster).begin()->first;
  job.process.Kill();  // SIGKILL: it cannot say goodbye
  // The client liveness window is 20 heartbeats of 500 ms: 10 s.
  ASSERT_TRUE(Eventually([&] { return Jobs(**cluster)[id]["state"] == "cancelled"; }, seconds(20)));
  EXPECT_EQ(Jobs(**cluster)[id]["reason"], "the client went away");
  EXPECT_LT(Jobs(**cluster)[id]["ok"], 400);
}

TEST(OperateTest, ARestartedCoordinatorResumesADetachedJobButNotAnOrphan) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult detached = RunFanout(
      With(**cluster, {"submit", "math", "--count", "30", "--iterations", "2000000", "--detach"}));
  ASSERT_EQ(detached.status, 0);
  const std::string kept = detached.out.substr(0, detached.out.find('\n'));
  Background orphan = StartFanout(
      With(**cluster, {"submit", "math", "--count", "30", "--iterations", "2000000", "--json"}));
  ASSERT_TRUE(Eventually([&] { return Jobs(**cluster).size() == 2; }));
  std::string lost;
  for (const auto& [id, j] : Jobs(**cluster)) {
    if (id != kept) lost = id;
  }
  // The orphan's client dies, then the coordinator, before it notices.
  orphan.process.Kill();
  ASSERT_TRUE((*cluster)->RestartCoordinator().ok());
  // The detached job runs on to its end.
  CommandResult watched = RunFanout(With(**cluster, {"watch", kept, "--json"}), seconds(90));
  ASSERT_EQ(watched.status, 0) << watched.err;
  EXPECT_EQ(watched.Json()["ok"], 30);
  // The orphan waited for its client, which never came: it ended, cancelled.
  ASSERT_TRUE(
      Eventually([&] { return Jobs(**cluster)[lost]["state"] == "cancelled"; }, seconds(20)));
  EXPECT_EQ(Jobs(**cluster)[lost]["reason"], "the client went away");
}

TEST(OperateTest, StatusShowsSlotsBusyWorkersTasksPerSecondAndTheLedger) {
  client::ClusterOptions options = ClusterWith(1);
  options.worker_flags = {"--slots", "2"};
  options.coordinator_flags = {"--ledger", ""};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  Background job = StartFanout(With(**cluster, {"submit", "math", "--count", "40", "--iterations",
                                                "2000000", "--model", "threads", "-q"}));
  ASSERT_TRUE(Eventually([&] {
    CommandResult s = RunFanout(With(**cluster, {"status", "--json"}));
    const nlohmann::json j = s.Json();
    return j.is_object() && j["workers"].size() == 1 && j["workers"][0]["state"] == "busy";
  }));
  CommandResult s = RunFanout(With(**cluster, {"status", "--json"}));
  const nlohmann::json j = s.Json();
  EXPECT_EQ(j["workers"][0]["slots"], 2);
  EXPECT_EQ(j["workers"][0]["in_flight"], 2);
  EXPECT_EQ(j["jobs_running"], 1);
  EXPECT_GT(j["tasks_queued"].get<int>(), 0);
  EXPECT_TRUE(j["ledger"].is_null());
  CommandResult human = RunFanout(With(**cluster, {"status"}));
  EXPECT_NE(human.out.find("busy"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("2/2"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("tasks/s"), std::string::npos) << human.out;
  job.process.Signal(SIGINT);
  job.Finish(seconds(20));
}

}  // namespace
}  // namespace fanout::testing
