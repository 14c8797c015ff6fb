// The rough edges a new user hits, each a one-line answer: typos, ranges,
// endpoints, the wrong service, the job id up front, workers' logs, tables,
// shutting down, a second ledger on one database.

#include <gtest/gtest.h>
#include <signal.h>

#include <regex>
#include <thread>

#include "client/local_cluster.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Runs `fanout args...`, expecting exit 2 and one line on stderr that says `says`.
void ExpectUsage(const std::vector<std::string>& args, const std::string& says) {
  const TimePoint start = Now();
  CommandResult r = RunFanout(args, seconds(20));
  std::string cmd;
  for (const auto& a : args) cmd += a + " ";
  EXPECT_EQ(r.status, 2) << cmd << ": " << r.err;
  EXPECT_NE(r.err.find(says), std::string::npos) << cmd << ": " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << cmd << ": " << r.err;
  EXPECT_LT(Now() - start, seconds(3)) << cmd << ": at once, not after a timeout";
}

TEST(CliTest, TyposGetASuggestion) {
  ExpectUsage({"sumbit", "math"}, "unknown command 'sumbit' (did you mean 'submit'?)");
  ExpectUsage({"submit", "mth"}, "unknown command 'mth' (did you mean 'math'?)");
  ExpectUsage({"submit", "math", "--modle", "sync"},
              "unknown flag '--modle' (did you mean '--model'?)");
  ExpectUsage({"worker", "--alow-exec"},
              "unknown flag '--alow-exec' (did you mean '--allow-exec'?)");
  ExpectUsage({"frobnicate"}, "unknown command 'frobnicate'");
}

TEST(CliTest, RangesAreInPlainNumbers) {
  const std::vector<std::vector<std::string>> cases = {
      {"submit", "web", "--retries", "50"},     {"submit", "web", "--max-body-bytes", "0"},
      {"submit", "math", "--iterations", "-5"}, {"submit", "bank", "--initial", "-1"},
      {"submit", "math", "--priority", "10"},   {"demo", "--count", "0"},
  };
  for (const auto& args : cases) {
    CommandResult r = RunFanout(args);
    EXPECT_EQ(r.status, 2) << args[2] << ": " << r.err;
    EXPECT_EQ(r.err.find("e+"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("1797693"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(".000000"), std::string::npos) << r.err;
  }
  ExpectUsage({"submit", "web", "--retries", "50"}, "not in range 0 to 20");
}

TEST(CliTest, ABadLogLevelIsSaidOnEverySubcommand) {
  for (const std::string sub : {"status", "jobs", "coordinator", "worker", "ledger", "demo"}) {
    ExpectUsage({sub, "--log-level", "loud"}, "--log-level");
  }
}

TEST(CliTest, AnEndpointWithoutASchemeIsAUsageErrorAtOnce) {
  ExpectUsage({"submit", "math", "--coordinator", "127.0.0.1:5556"},
              "'127.0.0.1:5556' has no scheme: write tcp://127.0.0.1:5556");
  ExpectUsage({"status", "--coordinator", "localhost:5556"}, "has no scheme");
  ExpectUsage({"worker", "--coordinator", "127.0.0.1:5555"}, "has no scheme");
  ExpectUsage({"coordinator", "--workers-endpoint", "*:5555"}, "has no scheme");
}

TEST(CliTest, TheWrongKindOfServiceIsNamed) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  // A worker pointed at the clients' port stops and says so.
  CommandResult worker = RunFanout(
      {"worker", "--coordinator", (*cluster)->clients_endpoint(), "--id", "lost"}, seconds(15));
  EXPECT_EQ(worker.status, 1);
  EXPECT_NE(worker.err.find("is not a coordinator's workers endpoint"), std::string::npos)
      << worker.err;
  // A client pointed at the workers' port.
  CommandResult submit =
      RunFanout({"submit", "math", "--coordinator", (*cluster)->workers_endpoint()});
  EXPECT_EQ(submit.status, 2);
  EXPECT_NE(submit.err.find("is not a coordinator's clients endpoint"), std::string::npos)
      << submit.err;
  // `status` pointed at a ledger.
  auto ledger = client::StartLedger(FanoutBinary(), {"--db", ":memory:"});
  ASSERT_TRUE(ledger.ok()) << ledger.error().message;
  CommandResult status = RunFanout({"status", "--coordinator", (*ledger)->address()});
  EXPECT_EQ(status.status, 2) << status.out;
  EXPECT_NE(status.err.find("this is a ledger"), std::string::npos) << status.err;
}

TEST(CliTest, TheJobIdComesFirstAndTablesStayAligned) {
  client::ClusterOptions options = ClusterWith(1);
  options.worker_flags = {"--allow-exec"};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult r =
      RunFanout({"submit", "exec", "--coordinator", (*cluster)->clients_endpoint(), "--arg",
                 "a value much longer than its column is wide", "--", "echo"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out.substr(0, r.out.find('\n')),
                                std::regex("^job [0-9a-f]{8}-[0-9]+: 1 exec task under sync$")))
      << r.out;
  EXPECT_NE(r.out.find("a value much longer …"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 task: 1 ok"), std::string::npos) << "singular: " << r.out;
}

TEST(CliTest, AWebTableIsNumberedByPageAndRedirectsCountOnceForRetries) {
  auto site = client::StartSite(FanoutBinary(), {"--fail-first", "2"});
  ASSERT_TRUE(site.ok()) << site.error().message;
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  const std::string url = (*site)->address() + "/pokedex/{n}";
  // Page 149 redirects to its name: two failures to ride out, two retries.
  CommandResult r =
      RunFanout({"submit", "web", "--coordinator", (*cluster)->clients_endpoint(), "--url-template",
                 url, "--start", "149", "--count", "2", "--retries", "2"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("   149  Dragonite"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("   150  Mewtwo"), std::string::npos) << r.out;
  // One retry is one too few, and the error says how many tries were made.
  CommandResult few =
      RunFanout({"submit", "web", "--coordinator", (*cluster)->clients_endpoint(), "--url-template",
                 url, "--start", "151", "--count", "1", "--retries", "1", "--json"});
  EXPECT_EQ(few.status, 1);
  EXPECT_NE(few.Json()["results"][0]["error"].get<std::string>().find("(after 2 tries)"),
            std::string::npos)
      << few.out;
}

TEST(CliTest, TimelinePathsAreCheckedBeforeTheJobRuns) {
  ExpectUsage({"submit", "math", "--timeline", "job.png"}, "must end in .svg");
  ExpectUsage({"submit", "math", "--timeline", "/no/such/dir/job.svg"}, "cannot write in");
}

TEST(CliTest, WorkersSayWhatTheyDoAndADrainedWorkerLeavesNotDies) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult r = RunFanout({"submit", "math", "--coordinator", (*cluster)->clients_endpoint(),
                               "--count", "3", "--iterations", "1000"});
  ASSERT_EQ(r.status, 0);
  const std::string log = (*cluster)->dir() + "/worker-1.log";
  EXPECT_TRUE(Eventually([&] { return ReadFile(log).find("none now") != std::string::npos; }))
      << ReadFile(log);
  const std::string text = ReadFile(log);
  EXPECT_NE(text.find("connected to the coordinator at"), std::string::npos) << text;
  EXPECT_NE(text.find("(worker id worker-1)"), std::string::npos) << text;
  EXPECT_NE(text.find("first task here (math under sync)"), std::string::npos) << text;
  EXPECT_NE(text.find("3 tasks ran here (3 ok, 0 failed)"), std::string::npos) << text;
  // Ctrl-C drains it: the coordinator counts it as gone, not lost.
  (*cluster)->workers()[0].Signal(SIGINT);
  ASSERT_TRUE((*cluster)->workers()[0].Wait(seconds(10)).has_value());
  EXPECT_TRUE(Eventually([&] {
    return ReadFile((*cluster)->dir() + "/coordinator.log")
               .find("worker worker-1 left (drained)") != std::string::npos;
  }));
  const nlohmann::json status =
      RunFanout({"status", "--json", "--coordinator", (*cluster)->clients_endpoint()}).Json();
  EXPECT_EQ(status["workers_left"], 1);
  EXPECT_EQ(status["workers_lost"], 0);
}

TEST(CliTest, SubmitWhileTheCoordinatorShutsDownExits3) {
  client::ClusterOptions options = ClusterWith(1);
  options.coordinator_flags = {"--grace-s", "30"};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  Background running =
      StartFanout({"submit", "math", "--coordinator", (*cluster)->clients_endpoint(), "--count",
                   "50", "--iterations", "2000000", "-q"});
  const std::string log = (*cluster)->dir() + "/coordinator.log";
  ASSERT_TRUE(Eventually([&] {
    return ReadFile(log).find(" accepted from ") != std::string::npos;
  })) << ReadFile(log);
  (*cluster)->coordinator().Signal(SIGTERM);  // it stops taking jobs, lets this one finish
  ASSERT_TRUE(Eventually([&] {
    return ReadFile(log).find("stopping on signal") != std::string::npos;
  })) << ReadFile(log);
  CommandResult r = RunFanout({"submit", "math", "--coordinator", (*cluster)->clients_endpoint()});
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_NE(r.err.find("shutting down"), std::string::npos) << r.err;
  running.process.Signal(SIGINT);
  running.Finish(seconds(20));
}

TEST(CliTest, ASecondLedgerOnOneDatabaseRefusesToStart) {
  auto dir = client::TempDir::Make("cli-test");
  ASSERT_TRUE(dir.ok());
  const std::string db = *dir / "ledger.db";
  auto first = client::StartLedger(FanoutBinary(), {"--db", db});
  ASSERT_TRUE(first.ok()) << first.error().message;
  CommandResult second =
      RunFanout({"ledger", "--endpoint", "tcp://127.0.0.1:*", "--db", db}, seconds(10));
  EXPECT_EQ(second.status, 1);
  EXPECT_NE(second.err.find("is in use by another ledger"), std::string::npos) << second.err;
}

}  // namespace
}  // namespace fanout::testing
