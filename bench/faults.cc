// bench/faults: what failures cost. Prints one JSON object.
//
//  - detection: a worker SIGKILLed while it runs a one-task job; how long
//    until that task is dispatched to the other (idle) worker: the
//    heartbeat's silence limit, 3 x 500 ms by default, less the time since
//    the worker was last heard.
//  - coordinator restart: a math job whose coordinator is SIGKILLed and
//    restarted midway (resumed from its journal), against the same job left
//    alone; wall time on the client's clock.
// Each figure is the median of --runs runs. Real processes on loopback.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "client/job_client.h"
#include "client/local_cluster.h"
#include "common/log.h"

namespace fanout::bench {
namespace {

using std::chrono::milliseconds;

pb::JobSpec SlowMath(uint32_t count, uint64_t iterations) {
  return client::MathJob(pb::SYNC, count, iterations);
}

// Kills the worker of the first task dispatched 300 ms after it starts, and
// times how long until that task is dispatched again.
class Detect : public client::JobObserver {
 public:
  explicit Detect(client::LocalCluster& cluster) : cluster_(cluster) {}
  void OnDispatched(const client::JobReport&, const client::TaskRecord& task,
                    uint32_t attempt) override {
    if (attempt == 1 && victim_index_ == 0) {
      victim_index_ = task.index;
      victim_ = task.worker;
      std::this_thread::sleep_for(milliseconds(300));
      for (size_t i = 0; i < cluster_.workers().size(); ++i) {
        if (victim_ == fmt::format("worker-{}", i + 1)) cluster_.workers()[i].Kill();
      }
      killed_at_ = Now();
    } else if (task.index == victim_index_ && attempt == 2 && detection_ms_ < 0) {
      detection_ms_ = ToMillis(Now() - killed_at_);
    }
  }
  double detection_ms_ = -1;

 private:
  client::LocalCluster& cluster_;
  uint32_t victim_index_ = 0;
  std::string victim_;
  TimePoint killed_at_;
};

class RestartOnce : public client::JobObserver {
 public:
  explicit RestartOnce(client::LocalCluster& cluster) : cluster_(cluster) {}
  void OnDone(const client::JobReport& report, const client::TaskRecord&) override {
    if (report.finished == report.tasks.size() / 2 && !restarted_) {
      restarted_ = cluster_.RestartCoordinator().ok();
    }
  }
  bool restarted_ = false;

 private:
  client::LocalCluster& cluster_;
};

int Main(int argc, char** argv) {
  CLI::App app("bench/faults: failure detection and coordinator restart (JSON)");
  int runs = 5;
  app.add_option("--runs", runs, "repetitions; figures are medians")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  (void)InitLogging("bench", "warn");

  client::ClusterOptions options;
  options.binary = FanoutNextToUs();
  options.workers = 2;
  options.log_level = "warn";

  std::vector<double> detections;
  for (int i = 0; i < runs; ++i) {
    auto cluster = client::LocalCluster::Start(options);
    if (!cluster) return fmt::print(stderr, "bench: {}\n", cluster.error().message), 1;
    client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
    Detect detect(**cluster);
    Result<client::JobReport> report = client.Run(SlowMath(1, 20'000'000), detect);
    if (!report || report->done.ok() != 1 || detect.detection_ms_ < 0) {
      return fmt::print(stderr, "bench: detection run failed\n"), 1;
    }
    detections.push_back(detect.detection_ms_);
    fmt::print(stderr, "detection run {}: {:.0f} ms\n", i + 1, detections.back());
  }

  std::vector<double> calm, restarted;
  for (int i = 0; i < runs; ++i) {
    auto cluster = client::LocalCluster::Start(options);
    if (!cluster) return fmt::print(stderr, "bench: {}\n", cluster.error().message), 1;
    client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
    auto r = RunOk(client, SlowMath(20, 2'000'000));
    if (!r) return fmt::print(stderr, "bench: {}\n", r.error().message), 1;
    calm.push_back(r->wall_ms);
    RestartOnce restart(**cluster);
    Result<client::JobReport> again = client.Run(SlowMath(20, 2'000'000), restart);
    if (!again || again->done.ok() != 20 || !restart.restarted_) {
      return fmt::print(stderr, "bench: restart run failed\n"), 1;
    }
    restarted.push_back(again->wall_ms);
    fmt::print(stderr, "math 20 x 2M: {:.0f} ms calm, {:.0f} ms with a coordinator restart\n",
               calm.back(), restarted.back());
  }

  nlohmann::json out = {
      {"benchmark", "faults"},
      {"machine", {{"cores", Cores()}, {"host", HostName()}}},
      {"runs", runs},
      {"detection_ms",
       {{"median", Median(detections)},
        {"runs", detections},
        {"heartbeat_ms", 500},
        {"liveness_intervals", 3}}},
      {"coordinator_restart",
       {{"job", "math sync 20 x 2,000,000 on 2 workers"},
        {"calm_ms_median", Median(calm)},
        {"restarted_ms_median", Median(restarted)}}},
  };
  fmt::print("{}\n", out.dump(2));
  return 0;
}

}  // namespace
}  // namespace fanout::bench

int main(int argc, char** argv) { return fanout::bench::Main(argc, argv); }
