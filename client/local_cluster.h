// LocalCluster: a coordinator and N workers started as child processes on
// free loopback ports, for `fanout demo`, the benchmarks and the tests.
//
// The coordinator binds tcp://127.0.0.1:* and reports its ports through a
// ready file; workers connect to what it reports. Everything the cluster
// started is killed when it is destroyed, and dies with this process (see
// Subprocess). Not thread-safe.
//
//   auto cluster = LocalCluster::Start({.workers = 2});
//   if (!cluster) return cluster.error();
//   JobClient client({.endpoint = (*cluster)->clients_endpoint()});
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/security.h"
#include "common/subprocess.h"

namespace fanout::client {

struct ClusterOptions {
  std::string binary = {};  // the fanout executable; empty: this very program
  int workers = 2;
  std::string log_level = "warn";
  std::vector<std::string> coordinator_flags = {};
  std::vector<std::string> worker_flags = {};
  Duration start_timeout = milliseconds(15000);
  // A key directory (fanout keygen): the coordinator and the workers run
  // with --keys, and client_keys() are its client's.
  std::string keys = {};
};

// A fresh directory under $TMPDIR (or /tmp), "<prefix>-XXXXXX", removed with
// all it holds when this goes (kept when FANOUT_KEEP_DIRS=1, to read logs).
class TempDir {
 public:
  static Result<TempDir> Make(const std::string& prefix);
  TempDir() = default;
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // A path inside it.
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  void Remove();
  std::string path_;
};

class LocalCluster {
 public:
  static Result<std::unique_ptr<LocalCluster>> Start(ClusterOptions options);
  ~LocalCluster();

  const std::string& workers_endpoint() const { return workers_endpoint_; }
  const std::string& clients_endpoint() const { return clients_endpoint_; }
  // The coordinator's dashboard, /metrics and /api: "http://127.0.0.1:PORT"
  // (empty when its --http is off or its port was taken).
  const std::string& http_url() const { return http_url_; }
  // Where the processes' logs go: coordinator.log, worker-1.log, ...
  const std::string& dir() const { return dir_.path(); }
  // For a JobClient of this cluster: the client's keys (null without).
  std::shared_ptr<const Keys> client_keys() const { return client_keys_; }

  // Starts one more worker, "worker-<n>".
  Status AddWorker();
  // Waits until the coordinator lists `n` live workers.
  Status WaitForWorkers(size_t n, Duration timeout);

  // Kills the coordinator (if it still runs) and starts it again on the same
  // ports and journal: workers and clients find it again by themselves.
  Status RestartCoordinator();

  Subprocess& coordinator() { return coordinator_; }
  std::vector<Subprocess>& workers() { return workers_; }

 private:
  LocalCluster(ClusterOptions options, TempDir dir);
  Status SpawnCoordinator(const std::string& workers_at, const std::string& clients_at);

  TempDir dir_;  // first: it goes after the processes writing in it
  ClusterOptions options_;
  std::shared_ptr<const Keys> client_keys_;
  Subprocess coordinator_;
  std::vector<Subprocess> workers_;
  std::string workers_endpoint_;
  std::string clients_endpoint_;
  std::string http_url_;
  int next_worker_ = 1;
  int coordinator_starts_ = 0;
};

// LocalService: one long-running fanout process (`fanout pokedex`, `fanout
// ledger`) on a free loopback port, for the demo, the benchmarks and the
// tests. It is started with --ready-file and the address is read from the
// file's `key`; the process is killed when this is destroyed.
//
//   auto site = LocalService::Start(binary, "pokedex", {"--port", "0"}, "url");
//   std::string url = (*site)->address() + "/pokedex/{n}";
class LocalService {
 public:
  static Result<std::unique_ptr<LocalService>> Start(std::string binary, std::string subcommand,
                                                     std::vector<std::string> flags,
                                                     std::string key,
                                                     Duration timeout = milliseconds(15000));
  const std::string& address() const { return address_; }
  Subprocess& process() { return *process_; }
  const std::string& dir() const { return dir_.path(); }  // its log: <subcommand>.log
  // Starts it again with the same flags (after a kill), at the same address
  // when the flags pin it.
  Status Restart();

 private:
  LocalService() = default;
  TempDir dir_;  // first: it goes after the process writing in it
  std::vector<std::string> argv_;
  std::string ready_;
  std::string key_;
  Duration timeout_{};
  std::optional<Subprocess> process_;
  std::string address_;
  std::string log_;
};

// The local Pokédex site: `fanout pokedex --port 0 flags...`; address() is its URL.
Result<std::unique_ptr<LocalService>> StartSite(std::string binary, std::vector<std::string> flags);
// A ledger on a free port: `fanout ledger flags...`; address() is its endpoint.
Result<std::unique_ptr<LocalService>> StartLedger(std::string binary,
                                                  std::vector<std::string> flags);

// Waits for a JSON file written atomically by a child; fails early if the
// child exits.
Result<std::string> WaitForFile(const std::string& path, Subprocess& writer, Duration timeout);

}  // namespace fanout::client
