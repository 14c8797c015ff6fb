#include "client/local_cluster.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "client/job_client.h"

namespace fanout::client {

Result<TempDir> TempDir::Make(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string path = fmt::format("{}/{}-XXXXXX", tmp != nullptr && *tmp ? tmp : "/tmp", prefix);
  if (mkdtemp(path.data()) == nullptr) return Internal("cannot make a directory at {}", path);
  return TempDir(std::move(path));
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

TempDir::~TempDir() { Remove(); }

void TempDir::Remove() {
  const char* keep = std::getenv("FANOUT_KEEP_DIRS");
  if (path_.empty() || (keep != nullptr && std::string_view(keep) == "1")) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  path_.clear();
}

Result<std::string> WaitForFile(const std::string& path, Subprocess& writer, Duration timeout) {
  const TimePoint deadline = Now() + timeout;
  while (Now() < deadline) {
    std::ifstream in(path);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      return text.str();
    }
    if (!writer.Running()) {
      return Internal("process {} exited with status {} before writing {}", writer.pid(),
                      writer.Wait(Duration::zero()).value_or(-1), path);
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return Unavailable("{} did not appear within {:.1f} s", path, ToMillis(timeout) / 1000);
}

LocalCluster::LocalCluster(ClusterOptions options, TempDir dir)
    : dir_(std::move(dir)), options_(std::move(options)) {}

LocalCluster::~LocalCluster() {
  workers_.clear();  // kills them
  coordinator_.Kill();
}

Result<std::unique_ptr<LocalCluster>> LocalCluster::Start(ClusterOptions options) {
  if (options.binary.empty()) options.binary = SelfExecutable();
  Result<TempDir> dir = TempDir::Make("fanout-cluster");
  if (!dir) return dir.error();
  std::shared_ptr<const Keys> keys;
  if (!options.keys.empty()) {
    Result<std::shared_ptr<const Keys>> loaded = Keys::Load(options.keys, Role::kClient);
    if (!loaded) return loaded.error();
    keys = *loaded;
  }
  std::unique_ptr<LocalCluster> cluster(new LocalCluster(std::move(options), std::move(*dir)));
  cluster->client_keys_ = std::move(keys);
  if (Status s = cluster->SpawnCoordinator("tcp://127.0.0.1:*", "tcp://127.0.0.1:*"); !s) {
    return s.error();
  }
  for (int i = 0; i < cluster->options_.workers; ++i) {
    if (Status s = cluster->AddWorker(); !s) return s.error();
  }
  if (Status s =
          cluster->WaitForWorkers(cluster->options_.workers, cluster->options_.start_timeout);
      !s) {
    return s.error();
  }
  return cluster;
}

Status LocalCluster::SpawnCoordinator(const std::string& workers_at,
                                      const std::string& clients_at) {
  const std::string ready = dir_ / "coordinator.ready";
  std::remove(ready.c_str());
  std::vector<std::string> argv = {options_.binary, "--log-level", options_.log_level};
  if (!options_.keys.empty()) argv.insert(argv.end(), {"--keys", options_.keys});
  argv.insert(argv.end(), {"coordinator", "--workers-endpoint", workers_at, "--clients-endpoint",
                           clients_at, "--ready-file", ready});
  const std::vector<std::string>& flags = options_.coordinator_flags;
  if (std::find(flags.begin(), flags.end(), "--journal") == flags.end()) {
    argv.insert(argv.end(), {"--journal", dir_ / "coordinator.db"});
  }
  // Its dashboard on a free port (the same one again after a restart).
  if (std::find(flags.begin(), flags.end(), "--http") == flags.end()) {
    argv.insert(
        argv.end(),
        {"--http", http_url_.empty() ? "127.0.0.1:0" : http_url_.substr(http_url_.find("//") + 2)});
  }
  argv.insert(argv.end(), flags.begin(), flags.end());
  Subprocess::Options io;
  io.stderr_path =
      fmt::format("{}/coordinator{}.log", dir_.path(),
                  coordinator_starts_ == 0 ? "" : fmt::format("-{}", coordinator_starts_ + 1));
  ++coordinator_starts_;
  Result<Subprocess> coordinator = Subprocess::Spawn(argv, io);
  if (!coordinator) return coordinator.error();
  coordinator_ = std::move(*coordinator);
  Result<std::string> text = WaitForFile(ready, coordinator_, options_.start_timeout);
  if (!text) return text.error();
  try {
    const nlohmann::json j = nlohmann::json::parse(*text);
    workers_endpoint_ = j.at("workers").get<std::string>();
    clients_endpoint_ = j.at("clients").get<std::string>();
    http_url_ = j.value("http", "");
  } catch (const nlohmann::json::exception& e) {
    return Internal("bad ready file {}: {}", ready, e.what());
  }
  return {};
}

Status LocalCluster::RestartCoordinator() {
  coordinator_.Kill();
  return SpawnCoordinator(workers_endpoint_, clients_endpoint_);
}

Result<std::unique_ptr<LocalService>> LocalService::Start(std::string binary,
                                                          std::string subcommand,
                                                          std::vector<std::string> flags,
                                                          std::string key, Duration timeout) {
  if (binary.empty()) binary = SelfExecutable();
  Result<TempDir> dir = TempDir::Make("fanout-" + subcommand);
  if (!dir) return dir.error();
  std::unique_ptr<LocalService> service(new LocalService());
  service->ready_ = *dir / (subcommand + ".ready");
  service->log_ = *dir / (subcommand + ".log");
  service->dir_ = std::move(*dir);
  service->key_ = std::move(key);
  service->timeout_ = timeout;
  service->argv_ = {binary, "--log-level", "info", subcommand, "--ready-file", service->ready_};
  service->argv_.insert(service->argv_.end(), flags.begin(), flags.end());
  if (Status s = service->Restart(); !s) return s.error();
  return service;
}

Status LocalService::Restart() {
  std::remove(ready_.c_str());
  Subprocess::Options io;
  io.stderr_path = log_;
  Result<Subprocess> process = Subprocess::Spawn(argv_, io);
  if (!process) return process.error();
  process_.emplace(std::move(*process));
  Result<std::string> text = WaitForFile(ready_, *process_, timeout_);
  if (!text) return text.error();
  try {
    address_ = nlohmann::json::parse(*text).at(key_).get<std::string>();
    return {};
  } catch (const nlohmann::json::exception& e) {
    return Internal("bad ready file {}: {}", ready_, e.what());
  }
}

Result<std::unique_ptr<LocalService>> StartSite(std::string binary,
                                                std::vector<std::string> flags) {
  flags.insert(flags.begin(), {"--port", "0"});
  return LocalService::Start(std::move(binary), "pokedex", std::move(flags), "url");
}

Result<std::unique_ptr<LocalService>> StartLedger(std::string binary,
                                                  std::vector<std::string> flags) {
  if (std::find(flags.begin(), flags.end(), "--endpoint") == flags.end()) {
    flags.insert(flags.begin(), {"--endpoint", "tcp://127.0.0.1:*"});
  }
  return LocalService::Start(std::move(binary), "ledger", std::move(flags), "endpoint");
}

Status LocalCluster::AddWorker() {
  const std::string name = fmt::format("worker-{}", next_worker_++);
  std::vector<std::string> argv = {options_.binary, "--log-level", options_.log_level};
  if (!options_.keys.empty()) argv.insert(argv.end(), {"--keys", options_.keys});
  argv.insert(argv.end(), {"worker", "--coordinator", workers_endpoint_, "--id", name});
  argv.insert(argv.end(), options_.worker_flags.begin(), options_.worker_flags.end());
  Subprocess::Options io;
  io.stderr_path = dir_ / (name + ".log");
  Result<Subprocess> worker = Subprocess::Spawn(argv, io);
  if (!worker) return worker.error();
  workers_.push_back(std::move(*worker));
  return {};
}

Status LocalCluster::WaitForWorkers(size_t n, Duration timeout) {
  JobClient client(ClientOptions{
      .endpoint = clients_endpoint_, .connect_timeout = milliseconds(1000), .keys = client_keys_});
  const TimePoint deadline = Now() + timeout;
  size_t seen = 0;
  while (Now() < deadline) {
    Result<pb::StatusReply> status = client.Status();
    if (status) {
      seen = 0;
      for (const auto& w : status->workers()) seen += w.draining() ? 0 : 1;
      if (seen >= n) return {};
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return Unavailable("only {} of {} workers joined within {:.1f} s (logs in {})", seen, n,
                     ToMillis(timeout) / 1000, dir_.path());
}

}  // namespace fanout::client
