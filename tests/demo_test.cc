// `fanout demo`: the whole comparison end to end, and nothing left behind.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include "client/local_cluster.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Marker() {
  return fmt::format("FANOUT_TEST_MARKER={}-{}", getpid(),
                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

// The table rows of one job ("  web   sync ...").
std::vector<std::string> Rows(const std::string& out, const std::string& job) {
  std::vector<std::string> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  " + job + " ", 0) == 0) rows.push_back(line);
  }
  return rows;
}

void ExpectNothingLeft(const std::string& marker) {
  std::vector<pid_t> left;
  for (int i = 0; i < 50; ++i) {  // children die with their parent; give them a moment
    left = ProcessesWithEnv(marker);
    if (left.empty()) return;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ADD_FAILURE() << left.size() << " processes left running, e.g. pid " << left[0];
  for (pid_t pid : left) kill(pid, SIGKILL);
}

TEST(DemoTest, QuickDemoRunsEveryJobUnderEveryModelAndLeavesNothing) {
  const std::string marker = Marker();
  auto dir = client::TempDir::Make("demo-test");
  ASSERT_TRUE(dir.ok());
  const std::string out = *dir / "report";
  CommandResult r = StartFanout({"demo", "--quick", "--workers", "2", "--out", out}, {marker})
                        .Finish(seconds(120));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Rows(r.out, "web").size(), 3u) << r.out;
  EXPECT_EQ(Rows(r.out, "math").size(), 4u) << r.out;
  const std::vector<std::string> bank = Rows(r.out, "bank");
  ASSERT_EQ(bank.size(), 7u) << r.out;
  for (const std::string& row : Rows(r.out, "web"))
    EXPECT_NE(row.find("all 20 names right"), std::string::npos) << row;
  for (const std::string& row : Rows(r.out, "math"))
    EXPECT_NE(row.find("all 20 values right"), std::string::npos) << row;
  for (const std::string& row : bank) {
    const bool safe =
        row.find("locked") != std::string::npos || row.find("atomic") != std::string::npos;
    if (safe) {
      EXPECT_NE(row.find("sum 5000 right"), std::string::npos) << row;
    } else {  // unsafe shows its loss, or says the sum came out right
      EXPECT_TRUE(row.find("lost") != std::string::npos ||
                  row.find("created") != std::string::npos ||
                  row.find("sum 5000 right") != std::string::npos)
          << row;
    }
  }
  // The user's own commands: sleep under sync and under async, same results.
  const std::vector<std::string> exec = Rows(r.out, "exec");
  ASSERT_EQ(exec.size(), 2u) << r.out;
  EXPECT_NE(exec[0].find("all 20 ok"), std::string::npos) << exec[0];
  EXPECT_NE(exec[1].find("all 20 ok, as sync"), std::string::npos) << exec[1];
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos) << "no colour when not a terminal";
  ExpectNothingLeft(marker);

  // The report: a picture and a trace per run, and a page showing them all.
  const std::string index = ReadFile(out + "/index.html");
  for (const std::string name :
       {"web-sync", "web-async", "math-sync-x2", "bank-threads-locked", "exec-async-sleep"}) {
    EXPECT_NE(index.find("<img src=\"" + name + ".svg\""), std::string::npos) << name;
    const std::string svg = ReadFile(out + "/" + name + ".svg");
    size_t bars = 0;
    for (size_t at = 0; (at = svg.find("<rect class=\"task ", at)) != std::string::npos; ++at) {
      ++bars;
    }
    EXPECT_EQ(bars, 20u) << name;
    EXPECT_TRUE(svg.ends_with("</svg>\n")) << name;
    const nlohmann::json trace =
        nlohmann::json::parse(ReadFile(out + "/" + name + ".json"), nullptr, false);
    ASSERT_TRUE(trace.is_object()) << name;
    EXPECT_FALSE(trace["traceEvents"].empty()) << name;
  }
}

TEST(DemoTest, InterruptedDemoStopsEverythingItStarted) {
  const std::string marker = Marker();
  auto dir = client::TempDir::Make("demo-test");
  ASSERT_TRUE(dir.ok());
  Background demo =
      StartFanout({"demo", "--quick", "--workers", "2", "--out", *dir / "report"}, {marker});
  // Wait until the cluster is up and the first run is going.
  const TimePoint give_up = Now() + seconds(30);
  while (ReadFile(demo.out_path).find("tasks a run") == std::string::npos && Now() < give_up) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_GE(ProcessesWithEnv(marker).size(), 5u) << "coordinator, 2 workers, ledger, site";
  demo.process.Signal(SIGINT);
  CommandResult r = demo.Finish(seconds(30));
  EXPECT_EQ(r.status, 130) << r.err;
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
  ExpectNothingLeft(marker);
}

}  // namespace
}  // namespace fanout::testing
