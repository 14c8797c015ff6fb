// bench/exec: how fast the exec job runs commands. Prints one JSON object.
//
//  - floor: a bare loop in this process, posix_spawn("true") then waitpid,
//    one after another: what starting a process costs on this machine.
//  - commands per second: N `true` commands (a job of N items) through one
//    worker under sync, threads (the worker's default pool) and async (100
//    in flight), submit to last result. Target: async within 2x of the floor.
//  - the article's lesson with the user's commands: 10 x `sleep 0.2` under
//    each model (~2 s, ~0.4 s with the default pool of cores + 4 on two
//    cores, ~0.2 s).
// Each figure is the median of --runs runs. Real processes on loopback.

#include <spawn.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <map>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "client/local_cluster.h"
#include "common/log.h"
#include "common/subprocess.h"

extern char** environ;

namespace fanout::bench {
namespace {

// Commands per second of a bare posix_spawn + waitpid loop.
double SpawnFloor(uint32_t commands) {
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  const TimePoint start = Now();
  for (uint32_t i = 0; i < commands; ++i) {
    pid_t pid;
    if (posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ) != 0) return 0;
    int status;
    waitpid(pid, &status, 0);
  }
  return commands / (ToMillis(Now() - start) / 1000);
}

pb::JobSpec Commands(pb::Model model, const std::vector<std::string>& command,
                     const std::string& item, uint32_t count) {
  pb::JobSpec spec;
  spec.set_model(model);
  spec.set_count(count);
  pb::ExecJob* e = spec.mutable_exec();
  for (const std::string& arg : command) e->add_command(arg);
  for (uint32_t i = 0; i < count; ++i) e->add_items(item);
  return spec;
}

int Main(int argc, char** argv) {
  CLI::App app("bench/exec: commands per second through a worker, against bare spawns (JSON)");
  uint32_t commands = 1000;
  int runs = 5;
  app.add_option("--commands", commands, "`true` commands per job")->capture_default_str();
  app.add_option("--runs", runs, "repetitions; figures are medians")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  (void)InitLogging("bench", "warn");

  client::ClusterOptions options;
  options.binary = FanoutNextToUs();
  options.workers = 1;
  options.log_level = "warn";
  options.coordinator_flags = {"--journal", ""};
  options.worker_flags = {"--allow-exec"};
  auto cluster = client::LocalCluster::Start(options);
  if (!cluster) {
    fmt::print(stderr, "bench: {}\n", cluster.error().message);
    return 1;
  }
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  // `true` takes its item as an argument and ignores it.
  const std::vector<std::string> truth = {"true"};
  if (auto r = RunOk(client, Commands(pb::ASYNC, truth, "warm-up", 100)); !r) {
    fmt::print(stderr, "bench: {}\n", r.error().message);
    return 1;
  }

  std::vector<double> floors;
  nlohmann::json rates = nlohmann::json::object(), sleeps = nlohmann::json::object();
  std::map<pb::Model, double> median_rate;
  for (pb::Model model : {pb::SYNC, pb::THREADS, pb::ASYNC}) {
    std::vector<double> per_s;
    for (int i = 0; i < runs; ++i) {
      if (model == pb::SYNC) floors.push_back(SpawnFloor(commands));
      auto r = RunOk(client, Commands(model, truth, "x", commands));
      if (!r) return fmt::print(stderr, "bench: {}\n", r.error().message), 1;
      per_s.push_back(commands / (r->wall_ms / 1000));
      fmt::print(stderr, "{} x true under {}, run {}: {:.0f} commands/s\n", commands,
                 ModelName(model), i + 1, per_s.back());
    }
    median_rate[model] = Median(per_s);
    rates[ModelName(model)] = {{"commands_per_s_median", std::round(Median(per_s))},
                               {"commands_per_s_runs", per_s}};

    std::vector<double> walls;
    for (int i = 0; i < std::min(runs, 3); ++i) {
      auto r = RunOk(client, Commands(model, {"sleep"}, "0.2", 10));
      if (!r) return fmt::print(stderr, "bench: {}\n", r.error().message), 1;
      walls.push_back(r->wall_ms);
      fmt::print(stderr, "10 x sleep 0.2 under {}: {:.0f} ms\n", ModelName(model), walls.back());
    }
    sleeps[ModelName(model)] = {{"wall_ms_median", std::round(Median(walls))}};
  }
  const double floor = Median(floors);
  nlohmann::json out = {
      {"benchmark", "exec"},
      {"machine", {{"cores", Cores()}, {"host", HostName()}}},
      {"runs", runs},
      {"commands", commands},
      {"bare_spawn_per_s_median", std::round(floor)},
      {"bare_spawn_per_s_runs", floors},
      {"true_commands", rates},
      // Target: at most 2 (async within 2x of the bare spawn floor).
      {"floor_over_async", std::round(floor / median_rate[pb::ASYNC] * 100) / 100},
      {"sleep_10x200ms", sleeps},
  };
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace
}  // namespace fanout::bench

int main(int argc, char** argv) { return fanout::bench::Main(argc, argv); }
