// The coordinator's HTTP side with real processes: /metrics counts what
// happened and parses (promtool), a real Prometheus scrapes it, /api says
// what `fanout status --json` and `fanout jobs --json` say, a keyed cluster
// asks for its token, and the dashboard renders in a real browser
// (tests/dashboard_browser.py: headless Chromium driven by Selenium).

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "client/job_client.h"
#include "common/security.h"
#include "http/fetch.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The value of one series in an exposition ("name{labels} value"), summed
// over the series whose labels contain every `match`; -1 when none.
double Sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& match = {}) {
  double sum = -1;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    const std::string series = line.substr(0, space);
    if (series != name && !series.starts_with(name + "{")) continue;
    bool all = true;
    for (const std::string& m : match) all &= series.find(m) != std::string::npos;
    if (!all) continue;
    sum = std::max(sum, 0.0) + std::stod(line.substr(space + 1));
  }
  return sum;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string Metrics(const std::string& url) {
  http::Fetched got = http::Fetch(url + "/metrics");
  EXPECT_EQ(got.status, 200) << got.error;
  EXPECT_NE(got.headers.find("text/plain; version=0.0.4"), std::string::npos) << got.headers;
  return got.body;
}

// `promtool check metrics` on an exposition: its complaints, empty when none
// (or when promtool is not installed: `installed` says).
std::string Promtool(const std::string& exposition, bool* installed) {
  *installed = std::filesystem::exists("/usr/bin/promtool");
  if (!*installed) return "";
  Result<client::TempDir> dir = client::TempDir::Make("fanout-promtool");
  if (!dir) return dir.error().message;
  std::ofstream(*dir / "metrics") << exposition;
  const std::string check =
      "/usr/bin/promtool check metrics < " + (*dir / "metrics") + " > " + (*dir / "out") + " 2>&1";
  return system(check.c_str()) == 0 ? "" : "promtool: " + ReadFile(*dir / "out");
}

std::string Metrics(const client::LocalCluster& cluster) { return Metrics(cluster.http_url()); }

TEST(DashboardTest, MetricsCountWhatHappenedAndPassPromtool) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  ASSERT_FALSE((*cluster)->http_url().empty()) << "the coordinator serves HTTP";
  std::string before;
  ASSERT_TRUE(Eventually([&] {  // a snapshot after both workers said Hello
    before = Metrics(**cluster);
    return Sample(before, "fanout_workers", {"state=\"idle\""}) == 2;
  })) << before;
  EXPECT_EQ(Sample(before, "fanout_workers_lost_total"), 0);
  EXPECT_GT(Sample(before, "process_resident_memory_bytes"), 1e6);

  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  client::JobObserver quiet;
  ASSERT_TRUE(client.Run(client::MathJob(pb::THREADS, 30, 1000), quiet).ok());
  // /metrics is at most a few hundred ms behind.
  std::string after;
  ASSERT_TRUE(Eventually([&] {
    after = Metrics(**cluster);
    return Sample(after, "fanout_tasks_total", {"kind=\"math\"", "outcome=\"ok\""}) == 30;
  })) << after;
  EXPECT_EQ(Sample(after, "fanout_tasks_total", {"model=\"threads\""}), 30);
  EXPECT_EQ(Sample(after, "fanout_jobs_total", {"kind=\"math\"", "outcome=\"done\""}), 1);
  EXPECT_EQ(Sample(after, "fanout_task_duration_seconds_count", {"kind=\"math\""}), 30);
  EXPECT_EQ(Sample(after, "fanout_task_queue_seconds_count"), 30);
  EXPECT_EQ(Sample(after, "fanout_jobs_running"), 0);
  EXPECT_GT(Sample(after, "fanout_journal_commit_seconds_count"), 0);

  // A killed worker shows.
  (*cluster)->workers()[0].Kill();
  ASSERT_TRUE(
      Eventually([&] { return Sample(Metrics(**cluster), "fanout_workers_lost_total") == 1; }));

  bool promtool = false;
  EXPECT_EQ(Promtool(Metrics(**cluster), &promtool), "");
  if (!promtool) GTEST_SKIP() << "no promtool here";
}

TEST(DashboardTest, WorkersAndTheLedgerServeTheirOwnMetrics) {
  const int ledger_port = FreePort();
  auto ledger = client::StartLedger(
      FanoutBinary(), {"--db", ":memory:", "--http", fmt::format("127.0.0.1:{}", ledger_port)});
  ASSERT_TRUE(ledger.ok()) << ledger.error().message;
  const int worker_port = FreePort();
  client::ClusterOptions options = ClusterWith(1);
  options.coordinator_flags = {"--ledger", (*ledger)->address()};
  options.worker_flags = {"--http", fmt::format("127.0.0.1:{}", worker_port)};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  const std::string worker_url = fmt::format("http://127.0.0.1:{}", worker_port);
  const std::string ledger_url = fmt::format("http://127.0.0.1:{}", ledger_port);
  ASSERT_TRUE(
      Eventually([&] { return Sample(Metrics(worker_url), "fanout_worker_connected") == 1; }));

  CommandResult bank =
      RunFanout({"submit", "bank", "--count", "12", "--mode", "atomic", "--model", "async",
                 "--verify-ms", "1", "--json", "--coordinator", (*cluster)->clients_endpoint()});
  ASSERT_EQ(bank.status, 0) << bank.err;
  CommandResult math = RunFanout({"submit", "math", "--count", "5", "--model", "threads",
                                  "--coordinator", (*cluster)->clients_endpoint()});
  ASSERT_EQ(math.status, 0) << math.err;

  std::string worker;
  ASSERT_TRUE(Eventually([&] {
    worker = Metrics(worker_url);
    return Sample(worker, "fanout_worker_tasks_total", {"kind=\"math\""}) == 5;
  })) << worker;
  EXPECT_EQ(Sample(worker, "fanout_worker_tasks_total",
                   {"kind=\"bank\"", "model=\"async\"", "outcome=\"ok\""}),
            12);
  EXPECT_EQ(Sample(worker, "fanout_worker_task_duration_seconds_count", {"kind=\"bank\""}), 12);
  EXPECT_EQ(Sample(worker, "fanout_worker_tasks_running"), 0);
  EXPECT_EQ(Sample(worker, "fanout_worker_connects_total"), 1);
  EXPECT_GT(Sample(worker, "process_resident_memory_bytes"), 1e6);

  // In memory every change is durable at once: no commit to count.
  const std::string ledger_text = Metrics(ledger_url);
  EXPECT_EQ(Sample(ledger_text, "fanout_ledger_transfers_total", {"outcome=\"applied\""}), 12);
  EXPECT_EQ(Sample(ledger_text, "fanout_ledger_transfers_total", {"outcome=\"refused\""}), 0);
  EXPECT_EQ(http::Fetch(ledger_url + "/healthz").status, 200);
  bool promtool = false;
  EXPECT_EQ(Promtool(worker, &promtool), "");
  EXPECT_EQ(Promtool(ledger_text, &promtool), "");
}

TEST(DashboardTest, ALedgerOnDiskCountsItsGroupCommits) {
  Result<client::TempDir> dir = client::TempDir::Make("fanout-ledger-metrics");
  ASSERT_TRUE(dir.ok());
  const int port = FreePort();
  auto ledger = client::StartLedger(
      FanoutBinary(), {"--db", *dir / "books.db", "--http", fmt::format("127.0.0.1:{}", port)});
  ASSERT_TRUE(ledger.ok()) << ledger.error().message;
  client::ClusterOptions options = ClusterWith(1);
  options.coordinator_flags = {"--ledger", (*ledger)->address()};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult bank =
      RunFanout({"submit", "bank", "--count", "40", "--mode", "atomic", "--model", "async",
                 "--verify-ms", "0", "--coordinator", (*cluster)->clients_endpoint()});
  ASSERT_EQ(bank.status, 0) << bank.err;
  const std::string text = Metrics(fmt::format("http://127.0.0.1:{}", port));
  EXPECT_EQ(Sample(text, "fanout_ledger_transfers_total", {"outcome=\"applied\""}), 40);
  // Every transfer, the book's opening and its sealing reached the disk in
  // group commits, each timed.
  EXPECT_GE(Sample(text, "fanout_ledger_group_commit_changes_sum"), 42) << text;
  const double commits = Sample(text, "fanout_ledger_commit_seconds_count");
  EXPECT_GE(commits, 1);
  EXPECT_EQ(Sample(text, "fanout_ledger_group_commit_changes_count"), commits);
  EXPECT_EQ(Sample(text, "fanout_ledger_replies_waiting"), 0);
}

TEST(DashboardTest, AWorkerRefusesAnOpenMetricsPortAndWarnsOfATakenOne) {
  CommandResult open = RunFanout(
      {"worker", "--coordinator", "tcp://127.0.0.1:1", "--http", "0.0.0.0:0"}, seconds(10));
  EXPECT_EQ(open.status, 2) << open.err;
  EXPECT_NE(open.err.find("--http: listening on tcp://0.0.0.0:0 without keys"), std::string::npos)
      << open.err;
  // A port already taken: the worker runs on without /metrics and does its work.
  auto first = client::LocalCluster::Start(ClusterWith(0));
  ASSERT_TRUE(first.ok()) << first.error().message;
  const std::string taken = (*first)->http_url().substr(std::string("http://").size());
  client::ClusterOptions options = ClusterWith(1);
  options.worker_flags = {"--http", taken};
  auto second = client::LocalCluster::Start(options);
  ASSERT_TRUE(second.ok()) << second.error().message;
  CommandResult math =
      RunFanout({"submit", "math", "--count", "2", "--coordinator", (*second)->clients_endpoint()});
  EXPECT_EQ(math.status, 0) << math.err;
  EXPECT_NE(ReadFile((*second)->dir() + "/worker-1.log").find("worker runs on without /metrics"),
            std::string::npos);
}

TEST(DashboardTest, TheApiSaysWhatTheCommandsSay) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult job = RunFanout({"submit", "math", "--count", "4", "--json", "--coordinator",
                                 (*cluster)->clients_endpoint()});
  ASSERT_EQ(job.status, 0) << job.err;
  const std::string id = job.Json()["job_id"];
  nlohmann::json jobs;
  ASSERT_TRUE(Eventually([&] {
    jobs = nlohmann::json::parse(http::Fetch((*cluster)->http_url() + "/api/jobs").body, nullptr,
                                 false);
    return jobs.is_array() && jobs.size() == 1 && jobs[0]["state"] == "done";
  })) << jobs;
  CommandResult listed =
      RunFanout({"jobs", "--all", "--json", "--coordinator", (*cluster)->clients_endpoint()});
  EXPECT_EQ(jobs, nlohmann::json::parse(listed.out));
  // One job: what `fanout result ID --json` prints, and its timeline.
  const nlohmann::json one =
      nlohmann::json::parse(http::Fetch((*cluster)->http_url() + "/api/jobs/" + id).body);
  CommandResult result =
      RunFanout({"result", id, "--json", "--coordinator", (*cluster)->clients_endpoint()});
  EXPECT_EQ(one, nlohmann::json::parse(result.out));
  EXPECT_EQ(one["state"], "done");
  EXPECT_EQ(one["results"].size(), 4u);
  // The coordinator's wall time, from acceptance to the end: within what the
  // submitter measured from its side.
  EXPECT_GT(one["wall_ms"].get<double>(), 0);
  EXPECT_LE(one["wall_ms"].get<double>(), job.Json()["wall_ms"].get<double>() + 1);
  http::Fetched svg = http::Fetch((*cluster)->http_url() + "/api/jobs/" + id + "/timeline.svg");
  EXPECT_EQ(svg.status, 200);
  EXPECT_NE(svg.headers.find("image/svg+xml"), std::string::npos) << svg.headers;
  EXPECT_EQ(Count(svg.body, "class=\"task ok\""), 4u) << "a bar per task";
  http::Fetched unknown = http::Fetch((*cluster)->http_url() + "/api/jobs/nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("job nope is not known"), std::string::npos) << unknown.body;

  const nlohmann::json status =
      nlohmann::json::parse(http::Fetch((*cluster)->http_url() + "/api/status").body);
  CommandResult cli =
      RunFanout({"status", "--json", "--coordinator", (*cluster)->clients_endpoint()});
  const nlohmann::json from_cli = nlohmann::json::parse(cli.out);
  for (const char* key : {"jobs_running", "tasks_dispatched", "workers_lost", "keyed"}) {
    EXPECT_EQ(status[key], from_cli[key]) << key;
  }
  EXPECT_EQ(status["workers"].size(), 1u);
  EXPECT_EQ(status["workers"][0]["worker_id"], from_cli["workers"][0]["worker_id"]);
}

TEST(DashboardTest, CancellingFromTheApiEndsTheJob) {
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  // ~100 ms a task, one at a time: it runs for a minute unless cancelled.
  CommandResult detached =
      RunFanout({"submit", "math", "--detach", "--count", "600", "--iterations", "3000000",
                 "--model", "sync", "--coordinator", (*cluster)->clients_endpoint()});
  ASSERT_EQ(detached.status, 0) << detached.err;
  std::string id = detached.out;
  id.erase(id.find_last_not_of('\n') + 1);
  http::Fetched refused;
  EXPECT_TRUE(Eventually([&] {  // listed once the next snapshot is out
    refused = http::Fetch((*cluster)->http_url() + "/api/jobs/" + id + "/cancel");
    return refused.status != 404;
  }));
  EXPECT_EQ(refused.status, 405) << "a GET cancels nothing";
  http::Fetched cancel;
  ASSERT_TRUE(Eventually([&] {  // the job is listed once the next snapshot is out
    if (cancel.status != 200) {
      cancel = http::Fetch((*cluster)->http_url() + "/api/jobs/" + id + "/cancel", {}, "POST");
    }
    const nlohmann::json job = nlohmann::json::parse(
        http::Fetch((*cluster)->http_url() + "/api/jobs/" + id).body, nullptr, false);
    return job.is_object() && job["state"] == "cancelled";
  })) << cancel.body;
  CommandResult result =
      RunFanout({"result", id, "--json", "--coordinator", (*cluster)->clients_endpoint()});
  EXPECT_NE(result.out.find("cancelled by the dashboard"), std::string::npos) << result.out;
}

TEST(DashboardTest, AKeyedClusterAsksForItsTokenAndAnOpenOneStaysOnLoopback) {
  Result<client::TempDir> dir = client::TempDir::Make("fanout-dash-keys");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(KeyGen(*dir / "keys").ok());
  client::ClusterOptions options = ClusterWith(1);
  options.keys = *dir / "keys";
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  std::string token = ReadFile(*dir / "keys/http.token");
  token.erase(token.find_last_not_of('\n') + 1);
  EXPECT_EQ(http::Fetch((*cluster)->http_url() + "/metrics").status, 401);
  EXPECT_EQ(http::Fetch((*cluster)->http_url() + "/api/status").status, 401);
  EXPECT_EQ(
      http::Fetch((*cluster)->http_url() + "/metrics", {"Authorization: Bearer " + token}).status,
      200);
  // Without keys, --http beyond loopback is refused like the ZeroMQ endpoints.
  CommandResult open =
      RunFanout({"coordinator", "--workers-endpoint", "tcp://127.0.0.1:0", "--clients-endpoint",
                 "tcp://127.0.0.1:0", "--journal", "", "--http", "0.0.0.0:0"},
                seconds(10));
  EXPECT_EQ(open.status, 2) << open.err;
  EXPECT_NE(open.err.find("--http: listening on tcp://0.0.0.0:0 without keys"), std::string::npos)
      << open.err;
}

TEST(DashboardTest, APortAlreadyTakenIsAWarningAndTheCoordinatorRunsOn) {
  auto first = client::LocalCluster::Start(ClusterWith(0));
  ASSERT_TRUE(first.ok()) << first.error().message;
  const std::string taken = (*first)->http_url().substr(std::string("http://").size());
  client::ClusterOptions options = ClusterWith(1);
  options.coordinator_flags = {"--http", taken};
  auto second = client::LocalCluster::Start(options);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE((*second)->http_url().empty());
  EXPECT_NE(ReadFile((*second)->dir() + "/coordinator.log")
                .find("running without the dashboard and /metrics"),
            std::string::npos);
  CommandResult math =
      RunFanout({"submit", "math", "--count", "2", "--coordinator", (*second)->clients_endpoint()});
  EXPECT_EQ(math.status, 0) << math.err;
}

// Runs `argv` to its end with its output in `dir`; its exit status.
int RunTool(const std::vector<std::string>& argv, const client::TempDir& dir, Duration timeout) {
  Result<Subprocess> p =
      Subprocess::Spawn(argv, {.stdout_path = dir / "out", .stderr_path = dir / "err"});
  EXPECT_TRUE(p.ok()) << p.error().message;
  if (!p.ok()) return -1;
  std::optional<int> status = p->Wait(timeout);
  if (!status) p->Kill();
  return status.value_or(-1);
}

TEST(DashboardTest, APrometheusServerScrapesTheCoordinator) {
  if (!std::filesystem::exists("/usr/bin/prometheus")) GTEST_SKIP() << "no prometheus here";
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult job = RunFanout(
      {"submit", "math", "--count", "7", "--coordinator", (*cluster)->clients_endpoint()});
  ASSERT_EQ(job.status, 0) << job.err;
  Result<client::TempDir> dir = client::TempDir::Make("fanout-prometheus");
  ASSERT_TRUE(dir.ok());
  const std::string target = (*cluster)->http_url().substr(std::string("http://").size());
  std::ofstream(*dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n"
                                            "scrape_configs:\n  - job_name: fanout\n"
                                            "    static_configs:\n      - targets: ['"
                                         << target << "']\n";
  const int port = FreePort();
  Result<Subprocess> prometheus = Subprocess::Spawn(
      {"/usr/bin/prometheus", "--config.file=" + (*dir / "prometheus.yml"),
       "--storage.tsdb.path=" + (*dir / "data"),
       "--web.listen-address=127.0.0.1:" + std::to_string(port)},
      {.stdout_path = *dir / "prometheus.out", .stderr_path = *dir / "prometheus.log"});
  ASSERT_TRUE(prometheus.ok()) << prometheus.error().message;
  const std::string query =
      fmt::format("http://127.0.0.1:{}/api/v1/query?query=sum(fanout_tasks_total)", port);
  nlohmann::json answer;
  EXPECT_TRUE(Eventually(
      [&] {
        answer = nlohmann::json::parse(http::Fetch(query).body, nullptr, false);
        return answer.is_object() && answer["status"] == "success" &&
               !answer["data"]["result"].empty() && answer["data"]["result"][0]["value"][1] == "7";
      },
      seconds(30)))
      << answer << "\n"
      << ReadFile(*dir / "prometheus.log");
  prometheus->Kill();
}

TEST(DashboardTest, TheDashboardInARealBrowserShowsTheWorkersAndTheRunningJob) {
  for (const char* needed : {"/usr/bin/chromium", "/usr/bin/chromedriver"}) {
    if (!std::filesystem::exists(needed)) GTEST_SKIP() << "no " << needed << " here";
  }
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  // ~50 ms a task, one at a time on each worker: it runs while the page loads.
  CommandResult detached =
      RunFanout({"submit", "math", "--detach", "--count", "400", "--iterations", "1000000",
                 "--model", "sync", "--coordinator", (*cluster)->clients_endpoint()});
  ASSERT_EQ(detached.status, 0) << detached.err;
  std::string id = detached.out;
  id.erase(id.find_last_not_of('\n') + 1);
  Result<client::TempDir> dir = client::TempDir::Make("fanout-browser");
  ASSERT_TRUE(dir.ok());
  const int status =
      RunTool({"/usr/bin/python3", FANOUT_SOURCE_DIR "/tests/dashboard_browser.py",
               (*cluster)->http_url() + "/", id, "worker-1,worker-2", *dir / "dashboard.png"},
              *dir, seconds(90));
  ASSERT_EQ(status, 0) << ReadFile(*dir / "out") << ReadFile(*dir / "err");
  const nlohmann::json seen = nlohmann::json::parse(ReadFile(*dir / "out"), nullptr, false);
  ASSERT_TRUE(seen.is_object()) << ReadFile(*dir / "out");
  std::vector<std::string> workers = seen["workers"];
  std::sort(workers.begin(), workers.end());
  EXPECT_EQ(workers, (std::vector<std::string>{"worker-1", "worker-2"}));
  EXPECT_NE(seen["job_row"].get<std::string>().find(id), std::string::npos) << seen;
  EXPECT_NE(seen["job_row"].get<std::string>().find("math"), std::string::npos) << seen;
  EXPECT_NE(seen["progress"].get<std::string>().find(" of 400"), std::string::npos) << seen;
  // The selected job: its facts, and its timeline drawn live (bars added
  // while the page looks), a lane per worker (each runs one task at a time).
  EXPECT_TRUE(seen["selected"].get<bool>()) << seen;
  EXPECT_NE(seen["url"].get<std::string>().find("#job=" + id), std::string::npos) << seen;
  EXPECT_NE(seen["facts"].get<std::string>().find("math under sync"), std::string::npos) << seen;
  EXPECT_GT(seen["bars_later"].get<int>(), seen["bars_first"].get<int>()) << seen;
  EXPECT_LE(seen["bars_later"].get<int>(), 400) << seen;
  EXPECT_GE(seen["lanes"].get<int>(), 1) << seen;
  EXPECT_EQ(seen["console_errors"], nlohmann::json::array()) << seen;
  EXPECT_GT(seen["screenshot_bytes"].get<int>(), 10'000) << "a screenshot with something in it";
  if (const char* keep = std::getenv("FANOUT_SCREENSHOT")) {
    std::filesystem::copy_file(*dir / "dashboard.png", keep,
                               std::filesystem::copy_options::overwrite_existing);
  }
}

}  // namespace
}  // namespace fanout::testing
