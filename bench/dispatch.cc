// bench/dispatch: how fast fanout moves tasks, and how math scales with
// worker processes. Prints one JSON object.
//
//  - throughput: N tiny tasks (math, 0 iterations) through a coordinator and
//    one `threads` worker, submit to last result; tasks per second. With
//    credit = capacity, throughput is at most concurrency / round trip
//    (Little's law), so the default pool of cores + 4 threads caps it near
//    6 / 200 us; --concurrency 64 (the default here) keeps the pipe full.
//    Beside it, the same run without the journal (a second cluster, runs
//    taking turns; target: the journal costs at most 10%) and the rate of
//    bare ZeroMQ messages of a task's size, one way (the ceiling).
//  - round trip: one-task jobs one after another, submit to JobDone; p50 and
//    p99 in microseconds, and each against a bare ZeroMQ request and reply's
//    p50 (targets: 2.5x and 5x).
//  - math scaling: 20 x 2,000,000 iterations under sync on 1 worker and on 2
//    worker processes.
//  - sharing, on one worker with --slots: a small job's wall time while a big
//    job fills the worker, against the same small job alone (target: within
//    3x); and the throughput of 10 jobs at once against one job of the same
//    tasks (target: within 10%).
//  - with --dashboard: throughput while /metrics, /api/status, /api/jobs and
//    /api/rate are fetched every 100 ms (Prometheus scraping, a dashboard
//    open) and the running job's timeline every second (the job selected on
//    the page, followed live) against without, their
//    runs taking turns on one cluster (target: 0.95);
//  - with --keys: throughput and round trip (threads) on a keyed cluster
//    (CURVE on every connection, keys made here) against a plain one, their
//    runs taking turns in the same process.
// Each figure is the median of --runs runs. Real processes on loopback.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "client/job_client.h"
#include "client/local_cluster.h"
#include "common/log.h"
#include "common/security.h"
#include "common/subprocess.h"
#include "http/fetch.h"

namespace fanout::bench {
namespace {

pb::JobSpec Math(pb::Model model, uint32_t count, uint64_t iterations, uint32_t concurrency,
                 uint32_t workers) {
  pb::JobSpec spec = client::MathJob(model, count, iterations);
  spec.set_concurrency(concurrency);
  spec.set_max_workers(workers);
  return spec;
}

// The floor under any task's round trip: one bare ZeroMQ request and reply
// over loopback TCP between two threads (a task crosses two such round
// trips: client-coordinator and coordinator-worker). p50 and p99 in
// microseconds.
std::pair<double, double> BareZeroMqRoundTrip(uint32_t count) {
  zmq::context_t server_ctx(1), client_ctx(1);
  zmq::socket_t router(server_ctx, zmq::socket_type::router);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::thread echo([&] {
    for (uint32_t i = 0; i < count; ++i) {
      zmq::message_t id, body;
      (void)router.recv(id);
      (void)router.recv(body);
      router.send(id, zmq::send_flags::sndmore);
      router.send(body, zmq::send_flags::none);
    }
  });
  zmq::socket_t dealer(client_ctx, zmq::socket_type::dealer);
  dealer.connect(endpoint);
  std::vector<double> rtt;
  for (uint32_t i = 0; i < count; ++i) {
    const TimePoint sent = Now();
    dealer.send(zmq::str_buffer("ping"), zmq::send_flags::none);
    zmq::message_t reply;
    (void)dealer.recv(reply);
    rtt.push_back(ToMillis(Now() - sent) * 1000);
  }
  echo.join();
  return {Percentile(rtt, 0.5), Percentile(rtt, 0.99)};
}

// The ceiling over any throughput: `count` messages of a tiny task's size
// from a DEALER to a ROUTER over loopback TCP, one send each; messages/s.
double BareZeroMqRate(uint32_t count) {
  zmq::context_t server_ctx(1), client_ctx(1);
  zmq::socket_t router(server_ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::rcvhwm, 0);
  router.bind("tcp://127.0.0.1:*");
  zmq::socket_t dealer(client_ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::sndhwm, 0);
  dealer.connect(router.get(zmq::sockopt::last_endpoint));
  const std::string body(48, 'x');  // a math task's envelope is about this size
  const TimePoint start = Now();
  std::thread sender([&] {
    for (uint32_t i = 0; i < count; ++i) dealer.send(zmq::buffer(body), zmq::send_flags::none);
  });
  for (uint32_t i = 0; i < count; ++i) {
    zmq::message_t id, msg;
    (void)router.recv(id);
    (void)router.recv(msg);
  }
  const double seconds = ToMillis(Now() - start) / 1000;
  sender.join();
  return count / seconds;
}

// Waits until every job in `ids` has ended; the span from the first one's
// acceptance to the last one's end, on the coordinator's clock, in ms.
Result<double> Span(client::JobClient& client, const std::vector<std::string>& ids) {
  while (true) {
    Result<pb::JobsReply> jobs = client.Jobs(/*all=*/true);
    if (!jobs) return jobs.error();
    int64_t first = INT64_MAX, last = 0;
    size_t ended = 0;
    for (const pb::JobInfo& j : jobs->jobs()) {
      if (std::find(ids.begin(), ids.end(), j.job_id()) == ids.end()) continue;
      first = std::min(first, j.accepted_us());
      if (j.ended_us() > 0) {
        if (j.state() != "done") return Internal("job {} ended {}", j.job_id(), j.state());
        ++ended;
        last = std::max(last, j.ended_us());
      }
    }
    if (ended == ids.size()) return static_cast<double>(last - first) / 1000;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

// Jobs sharing one worker with --slots: the small job behind a big one, and
// ten jobs at once against one.
Result<nlohmann::json> Sharing(int runs, uint32_t tasks, bool no_journal) {
  client::ClusterOptions options;
  options.binary = FanoutNextToUs();
  options.workers = 1;
  options.log_level = "warn";
  if (no_journal) options.coordinator_flags = {"--journal", ""};
  options.worker_flags = {"--slots", "2"};
  auto cluster = client::LocalCluster::Start(options);
  if (!cluster) return cluster.error();
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  client::JobClient big_client({.endpoint = (*cluster)->clients_endpoint()});
  // ~5 ms a task: the small job is 10 of them, the big one 2,000.
  const uint64_t kIterations = 50'000;
  pb::JobSpec small = Math(pb::THREADS, 10, kIterations, 0, 0);
  pb::JobSpec big = Math(pb::THREADS, 2000, kIterations, 0, 0);
  std::vector<double> alone, behind;
  for (int i = 0; i < runs; ++i) {
    auto a = RunOk(client, small);
    if (!a) return a.error();
    alone.push_back(a->wall_ms);
    Result<std::string> id = big_client.Detach(big);
    if (!id) return id.error();
    std::this_thread::sleep_for(milliseconds(100));  // it fills the worker
    auto b = RunOk(client, small);
    if (!b) return b.error();
    behind.push_back(b->wall_ms);
    if (auto c = big_client.Cancel(*id, "benchmark"); !c) return c.error();
    fmt::print(stderr, "small job alone {:.0f} ms, behind a big one {:.0f} ms\n", alone.back(),
               behind.back());
  }
  // Ten jobs at once against one of the same tasks: tiny tasks, 64 slots.
  auto many_cluster = [&]() {
    client::ClusterOptions o = options;
    o.worker_flags = {"--slots", "64"};
    return client::LocalCluster::Start(o);
  }();
  if (!many_cluster) return many_cluster.error();
  client::JobClient many({.endpoint = (*many_cluster)->clients_endpoint()});
  std::vector<double> one_rate, ten_rate;
  for (int i = 0; i < runs; ++i) {
    Result<std::string> one = many.Detach(Math(pb::THREADS, tasks, 0, 64, 0));
    if (!one) return one.error();
    Result<double> one_ms = Span(many, {*one});
    if (!one_ms) return one_ms.error();
    std::vector<std::string> ten;
    for (int j = 0; j < 10; ++j) {
      Result<std::string> id = many.Detach(Math(pb::THREADS, tasks / 10, 0, 64, 0));
      if (!id) return id.error();
      ten.push_back(*id);
    }
    Result<double> ten_ms = Span(many, ten);
    if (!ten_ms) return ten_ms.error();
    one_rate.push_back(tasks / (*one_ms / 1000));
    ten_rate.push_back(tasks / (*ten_ms / 1000));
    fmt::print(stderr, "one job {:.0f} tasks/s, ten jobs at once {:.0f} tasks/s\n", one_rate.back(),
               ten_rate.back());
  }
  return nlohmann::json{
      {"small_job_alone_ms_median", std::round(Median(alone))},
      {"small_job_behind_big_ms_median", std::round(Median(behind))},
      // Target: at most 3.
      {"small_job_slowdown", std::round(Median(behind) / Median(alone) * 100) / 100},
      {"one_job_tasks_per_s_median", std::round(Median(one_rate))},
      {"ten_jobs_tasks_per_s_median", std::round(Median(ten_rate))},
      // Target: at least 0.9.
      {"ten_jobs_over_one", std::round(Median(ten_rate) / Median(one_rate) * 100) / 100},
      {"worker_slots", {{"small_and_big", 2}, {"ten_jobs", 64}}},
  };
}

// Throughput and round trip on a keyed cluster against a plain one, their
// runs in turn.
Result<nlohmann::json> Curve(int runs, uint32_t tasks, uint32_t roundtrips, uint32_t concurrency,
                             bool no_journal) {
  Result<client::TempDir> dir = client::TempDir::Make("fanout-bench-keys");
  if (!dir) return dir.error();
  if (Status s = KeyGen(*dir / "keys"); !s) return s.error();
  struct Side {
    std::unique_ptr<client::LocalCluster> cluster;
    std::unique_ptr<client::JobClient> client;
    std::vector<double> rates, p50s;
  };
  std::map<std::string, Side> sides;
  for (const std::string name : {"plain", "curve"}) {
    client::ClusterOptions options;
    options.binary = FanoutNextToUs();
    options.workers = 1;
    options.log_level = "warn";
    if (no_journal) options.coordinator_flags = {"--journal", ""};
    if (name == "curve") options.keys = *dir / "keys";
    auto cluster = client::LocalCluster::Start(options);
    if (!cluster) return cluster.error();
    Side& side = sides[name];
    side.client = std::make_unique<client::JobClient>(client::ClientOptions{
        .endpoint = (*cluster)->clients_endpoint(), .keys = (*cluster)->client_keys()});
    side.cluster = std::move(*cluster);
    if (auto r = RunOk(*side.client, Math(pb::THREADS, 1000, 0, concurrency, 1)); !r) {
      return r.error();
    }
  }
  for (int i = 0; i < runs; ++i) {
    for (auto& [name, side] : sides) {
      auto r = RunOk(*side.client, Math(pb::THREADS, tasks, 0, concurrency, 1));
      if (!r) return r.error();
      side.rates.push_back(tasks / (r->wall_ms / 1000));
      std::vector<double> rtt;
      for (uint32_t k = 0; k < roundtrips; ++k) {
        auto one = RunOk(*side.client, Math(pb::THREADS, 1, 0, concurrency, 1));
        if (!one) return one.error();
        rtt.push_back(one->wall_ms * 1000);
      }
      side.p50s.push_back(Percentile(rtt, 0.5));
      fmt::print(stderr, "{} run {}: {:.0f} tasks/s, round trip p50 {:.0f} us\n", name, i + 1,
                 side.rates.back(), side.p50s.back());
    }
  }
  nlohmann::json out;
  for (auto& [name, side] : sides) {
    out[name] = {{"tasks_per_s_median", std::round(Median(side.rates))},
                 {"round_trip_p50_us_median", std::round(Median(side.p50s))}};
  }
  const double plain_rate = Median(sides["plain"].rates), curve_rate = Median(sides["curve"].rates);
  out["throughput_curve_over_plain"] = std::round(curve_rate / plain_rate * 1000) / 1000;
  out["round_trip_curve_minus_plain_us"] =
      std::round(Median(sides["curve"].p50s) - Median(sides["plain"].p50s));
  return out;
}

// Throughput with the HTTP side busy (as the header says) against idle,
// runs in turn on one cluster.
Result<nlohmann::json> Dashboard(client::LocalCluster& cluster, client::JobClient& client, int runs,
                                 uint32_t tasks, uint32_t concurrency) {
  if (cluster.http_url().empty()) return Unavailable("the coordinator serves no HTTP");
  std::vector<double> idle, watched;
  uint64_t fetches = 0, views = 0;
  for (int i = 0; i < runs; ++i) {
    for (bool scraping : {false, true}) {
      std::atomic<bool> stop{false};
      std::thread scraper;
      if (scraping) {
        scraper = std::thread([&] {
          // This run's job, as the page lists it (a snapshot up to 200 ms old
          // may still list the last run's as running).
          const int64_t started_ms = UnixMicros() / 1000;
          std::string selected;
          int selected_at = -1;  // the turn the job was selected: viewed then, then every second
          for (int turn = 0; !stop; ++turn) {
            for (const char* path : {"/metrics", "/api/status", "/api/jobs", "/api/rate"}) {
              http::Fetched got = http::Fetch(cluster.http_url() + path);
              if (got.status != 200) continue;
              ++fetches;
              if (selected.empty() && std::string_view(path) == "/api/jobs") {
                const auto jobs = nlohmann::json::parse(got.body, nullptr, false);
                for (const auto& job : jobs.is_array() ? jobs : nlohmann::json::array()) {
                  if (job["ended_ms"].is_null() && job["accepted_ms"] >= started_ms) {
                    selected = job["job_id"];
                    selected_at = turn;
                  }
                }
              }
            }
            if (!selected.empty() && (turn - selected_at) % 10 == 0) {
              for (const char* view : {"/timeline.svg"}) {
                if (http::Fetch(cluster.http_url() + "/api/jobs/" + selected + view).status ==
                    200) {
                  ++fetches;
                  ++views;
                }
              }
            }
            std::this_thread::sleep_for(milliseconds(100));
          }
        });
      }
      auto r = RunOk(client, Math(pb::THREADS, tasks, 0, concurrency, 1));
      stop = true;
      if (scraper.joinable()) scraper.join();
      if (!r) return r.error();
      (scraping ? watched : idle).push_back(tasks / (r->wall_ms / 1000));
      fmt::print(stderr, "{} run {}: {:.0f} tasks/s\n", scraping ? "scraped" : "idle", i + 1,
                 (scraping ? watched : idle).back());
    }
  }
  return nlohmann::json{
      {"idle_tasks_per_s_median", std::round(Median(idle))},
      {"scraped_tasks_per_s_median", std::round(Median(watched))},
      // Target: at least 0.95.
      {"scraped_over_idle", std::round(Median(watched) / Median(idle) * 1000) / 1000},
      {"fetches", fetches},
      {"job_views", views}};
}

int Main(int argc, char** argv) {
  CLI::App app("bench/dispatch: task throughput, round trips and math scaling (JSON)");
  uint32_t tasks = 100'000, roundtrips = 2000, concurrency = 64;
  int runs = 5;
  bool skip_math = false, no_journal = false, skip_sharing = false, keys = false, dashboard = false;
  app.add_option("--tasks", tasks, "tiny tasks in the throughput job")->capture_default_str();
  app.add_option("--roundtrips", roundtrips, "one-task jobs timed")->capture_default_str();
  app.add_option("--concurrency", concurrency,
                 "threads in the worker's pool (0: its default, cores + 4)")
      ->capture_default_str();
  app.add_option("--runs", runs, "repetitions; figures are medians")->capture_default_str();
  app.add_flag("--skip-math", skip_math, "skip the math scaling runs");
  app.add_flag("--skip-sharing", skip_sharing, "skip the runs of jobs sharing a worker's slots");
  app.add_flag("--no-journal", no_journal, "run the coordinator without its journal");
  app.add_flag("--dashboard", dashboard,
               "also throughput with /metrics and /api fetched every 100 ms against without");
  app.add_flag("--keys", keys,
               "also throughput and round trip with CURVE (keys made here) against without");
  CLI11_PARSE(app, argc, argv);
  (void)InitLogging("bench", "warn");

  client::ClusterOptions options;
  options.binary = FanoutNextToUs();
  options.workers = 2;
  options.log_level = "warn";
  if (no_journal) options.coordinator_flags = {"--journal", ""};
  auto cluster = client::LocalCluster::Start(options);
  if (!cluster) {
    fmt::print(stderr, "bench: {}\n", cluster.error().message);
    return 1;
  }
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});

  // Warm up: executors, connections, page cache.
  if (auto r = RunOk(client, Math(pb::THREADS, 1000, 0, concurrency, 1)); !r) {
    fmt::print(stderr, "bench: {}\n", r.error().message);
    return 1;
  }

  // With the journal, a second cluster without it, their runs taking turns:
  // what the journal costs, measured in one run.
  std::unique_ptr<client::LocalCluster> unjournaled;
  std::unique_ptr<client::JobClient> unjournaled_client;
  if (!no_journal) {
    client::ClusterOptions o = options;
    o.workers = 1;
    o.coordinator_flags = {"--journal", ""};
    auto c = client::LocalCluster::Start(o);
    if (!c) return fmt::print(stderr, "bench: {}\n", c.error().message), 1;
    unjournaled = std::move(*c);
    unjournaled_client = std::make_unique<client::JobClient>(
        client::ClientOptions{.endpoint = unjournaled->clients_endpoint()});
    if (auto r = RunOk(*unjournaled_client, Math(pb::THREADS, 1000, 0, concurrency, 1)); !r) {
      return fmt::print(stderr, "bench: {}\n", r.error().message), 1;
    }
  }
  std::vector<double> rates, unjournaled_rates, bare_rates;
  for (int i = 0; i < runs; ++i) {
    auto r = RunOk(client, Math(pb::THREADS, tasks, 0, concurrency, 1));
    if (!r) return fmt::print(stderr, "bench: {}\n", r.error().message), 1;
    rates.push_back(tasks / (r->wall_ms / 1000));
    fmt::print(stderr, "throughput run {}: {:.0f} tasks/s\n", i + 1, rates.back());
    if (unjournaled_client) {
      auto u = RunOk(*unjournaled_client, Math(pb::THREADS, tasks, 0, concurrency, 1));
      if (!u) return fmt::print(stderr, "bench: {}\n", u.error().message), 1;
      unjournaled_rates.push_back(tasks / (u->wall_ms / 1000));
      fmt::print(stderr, "throughput run {} without the journal: {:.0f} tasks/s\n", i + 1,
                 unjournaled_rates.back());
    }
    bare_rates.push_back(BareZeroMqRate(tasks));
    fmt::print(stderr, "bare ZeroMQ, run {}: {:.0f} messages/s\n", i + 1, bare_rates.back());
  }
  unjournaled.reset();

  // One-task jobs, one after another, under each model.
  nlohmann::json round_trips = nlohmann::json::object();
  for (pb::Model model : {pb::SYNC, pb::THREADS, pb::ASYNC}) {
    std::vector<double> p50s, p99s;
    for (int i = 0; i < runs; ++i) {
      std::vector<double> rtt;
      for (uint32_t k = 0; k < roundtrips; ++k) {
        auto r = RunOk(client, Math(model, 1, 0, concurrency, 1));
        if (!r) return fmt::print(stderr, "bench: {}\n", r.error().message), 1;
        rtt.push_back(r->wall_ms * 1000);
      }
      p50s.push_back(Percentile(rtt, 0.50));
      p99s.push_back(Percentile(rtt, 0.99));
      fmt::print(stderr, "round trips under {}, run {}: p50 {:.0f} us, p99 {:.0f} us\n",
                 ModelName(model), i + 1, p50s.back(), p99s.back());
    }
    round_trips[ModelName(model)] = {{"p50_median", std::round(Median(p50s))},
                                     {"p99_median", std::round(Median(p99s))}};
  }
  round_trips["jobs_per_run"] = roundtrips;
  std::vector<double> floors, floors99;
  for (int i = 0; i < runs; ++i) {
    auto [p50, p99] = BareZeroMqRoundTrip(roundtrips);
    floors.push_back(p50);
    floors99.push_back(p99);
  }
  const double bare = Median(floors);
  round_trips["bare_zeromq_p50_median"] = std::round(bare);
  round_trips["bare_zeromq_p99_median"] = std::round(Median(floors99));
  // The targets: p50 within 2.5x the bare p50, p99 within 5x it.
  for (pb::Model model : {pb::SYNC, pb::THREADS, pb::ASYNC}) {
    nlohmann::json& m = round_trips[ModelName(model)];
    m["p50_to_bare_p50"] = m["p50_median"].get<double>() / bare;
    m["p99_to_bare_p50"] = m["p99_median"].get<double>() / bare;
  }

  nlohmann::json out = {
      {"benchmark", "dispatch"},
      {"machine", {{"cores", Cores()}, {"host", HostName()}}},
      {"runs", runs},
      {"journal", !no_journal},
      {"throughput",
       {{"tasks", tasks},
        {"model", "threads"},
        {"concurrency", concurrency},
        {"workers", 1},
        {"tasks_per_s_median", std::round(Median(rates))},
        {"tasks_per_s_runs", rates},
        {"bare_zeromq_msgs_per_s_median", std::round(Median(bare_rates))}}},
      {"round_trip_us", round_trips},
  };

  if (!unjournaled_rates.empty()) {
    out["throughput"]["no_journal_tasks_per_s_median"] = std::round(Median(unjournaled_rates));
    out["throughput"]["journal_to_no_journal"] = Median(rates) / Median(unjournaled_rates);
  }

  if (!skip_math) {
    std::vector<double> one, two;
    for (int i = 0; i < std::min(runs, 3); ++i) {
      for (auto [workers, into] : {std::pair{1u, &one}, std::pair{2u, &two}}) {
        auto r = RunOk(client, Math(pb::SYNC, 20, 2'000'000, 0, workers));
        if (!r) return fmt::print(stderr, "bench: {}\n", r.error().message), 1;
        into->push_back(r->wall_ms);
        fmt::print(stderr, "math sync on {} worker(s): {:.0f} ms\n", workers, r->wall_ms);
      }
    }
    out["math_sync_20x2M"] = {{"one_worker_ms_median", Median(one)},
                              {"two_workers_ms_median", Median(two)},
                              {"speedup", Median(one) / Median(two)}};
  }
  if (!skip_sharing) {
    Result<nlohmann::json> sharing = Sharing(std::min(runs, 3), tasks, no_journal);
    if (!sharing) return fmt::print(stderr, "bench: {}\n", sharing.error().message), 1;
    out["sharing"] = *sharing;
  }
  if (dashboard) {
    Result<nlohmann::json> watched = Dashboard(**cluster, client, runs, tasks, concurrency);
    if (!watched) return fmt::print(stderr, "bench: {}\n", watched.error().message), 1;
    out["dashboard"] = *watched;
  }
  if (keys) {
    Result<nlohmann::json> curve = Curve(runs, tasks, roundtrips, concurrency, no_journal);
    if (!curve) return fmt::print(stderr, "bench: {}\n", curve.error().message), 1;
    out["curve"] = *curve;
  }
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace
}  // namespace fanout::bench

int main(int argc, char** argv) { return fanout::bench::Main(argc, argv); }
