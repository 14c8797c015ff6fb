// A keyed cluster (fanout keygen, --keys) with real processes: it runs the
// three jobs; strangers (another cluster's worker, clients without keys or
// with foreign ones, a plain pyzmq peer, a revoked member) get nothing; a
// server without keys will not listen beyond loopback unless told
// --insecure. The garbage test floods keyed sockets too (garbage_test.cc).

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "client/job_client.h"
#include "common/security.h"
#include "common/transport.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Deletes `name`'s line from a cluster's authorized_keys, as an operator
// would to shut that key out.
void Revoke(const std::string& keys_dir, const std::string& name) {
  const std::string authorized = keys_dir + "/authorized_keys";
  std::string kept;
  {
    std::ifstream in(authorized);
    for (std::string line; std::getline(in, line);) {
      if (!line.ends_with(" " + name)) kept += line + "\n";
    }
  }
  std::ofstream(authorized, std::ios::trunc) << kept;
}

// A cluster's keys in a directory of their own.
struct ClusterKeys {
  client::TempDir dir;
  std::string path() const { return dir / "keys"; }
  static ClusterKeys Make() {
    Result<client::TempDir> dir = client::TempDir::Make("fanout-keys");
    EXPECT_TRUE(dir.ok());
    ClusterKeys keys{std::move(*dir)};
    Status made = KeyGen(keys.path());
    EXPECT_TRUE(made.ok()) << made.error().message;
    return keys;
  }
};

// A keyed ledger, and a keyed coordinator using it with `workers` workers.
struct KeyedCluster {
  ClusterKeys keys = ClusterKeys::Make();
  std::unique_ptr<client::LocalService> ledger;
  std::unique_ptr<client::LocalCluster> cluster;

  static KeyedCluster Start(int workers) {
    KeyedCluster c;
    auto ledger =
        client::StartLedger(FanoutBinary(), {"--db", ":memory:", "--keys", c.keys.path()});
    EXPECT_TRUE(ledger.ok()) << ledger.error().message;
    if (ledger.ok()) c.ledger = std::move(*ledger);
    client::ClusterOptions options = ClusterWith(workers);
    options.keys = c.keys.path();
    if (c.ledger) options.coordinator_flags = {"--ledger", c.ledger->address()};
    auto cluster = client::LocalCluster::Start(options);
    EXPECT_TRUE(cluster.ok()) << cluster.error().message;
    if (cluster.ok()) c.cluster = std::move(*cluster);
    return c;
  }
  bool ok() const { return ledger && cluster; }
  // `fanout ARGS --coordinator ... --keys DIR`.
  CommandResult Fanout(std::vector<std::string> args, const std::string& keys) const {
    args.insert(args.end(), {"--coordinator", cluster->clients_endpoint()});
    if (!keys.empty()) args.insert(args.end(), {"--keys", keys});
    return RunFanout(args);
  }
  nlohmann::json Status() const {
    CommandResult r = Fanout({"status", "--json"}, keys.path());
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  std::set<std::string> Workers() const {
    std::set<std::string> ids;
    const nlohmann::json status = Status();
    for (const auto& w : status["workers"]) ids.insert(w["worker_id"].get<std::string>());
    return ids;
  }
};

TEST(SecureTest, AKeyedClusterRunsMathWebAndBank) {
  KeyedCluster c = KeyedCluster::Start(2);
  ASSERT_TRUE(c.ok());
  auto site = client::StartSite(FanoutBinary(), {});
  ASSERT_TRUE(site.ok()) << site.error().message;
  ASSERT_TRUE(c.cluster->WaitForWorkers(2, seconds(10)).ok());

  client::JobClient client(
      {.endpoint = c.cluster->clients_endpoint(), .keys = c.cluster->client_keys()});
  client::JobObserver quiet;
  Result<client::JobReport> math = client.Run(client::MathJob(pb::THREADS, 20, 1000), quiet);
  ASSERT_TRUE(math.ok()) << math.error().message;
  EXPECT_EQ(math->done.ok(), 20u);
  EXPECT_EQ(math->tasks[4].result.number(), 1005.0);

  CommandResult web = c.Fanout({"submit", "web", "--url-template",
                                (*site)->address() + "/pokedex/{n}", "--count", "5", "--json"},
                               c.keys.path());
  ASSERT_EQ(web.status, 0) << web.err;
  EXPECT_EQ(web.Json()["ok"], 5);
  EXPECT_EQ(web.Json()["results"][0]["value"], "Bulbasaur");

  CommandResult bank = c.Fanout({"submit", "bank", "--mode", "atomic", "--json"}, c.keys.path());
  ASSERT_EQ(bank.status, 0) << bank.err;
  EXPECT_EQ(bank.Json()["ledger"]["sum"], bank.Json()["ledger"]["expected_sum"]);

  const nlohmann::json status = c.Status();
  EXPECT_EQ(status["keyed"], true);
  EXPECT_EQ(status["refused"], 0) << "nobody was refused";
  CommandResult text = c.Fanout({"status"}, c.keys.path());
  EXPECT_NE(text.out.find("keyed (CURVE): 0 connections refused"), std::string::npos) << text.out;
  // fanout health, keyed, at the coordinator and at the ledger.
  for (const std::string& at : {c.cluster->clients_endpoint(), c.ledger->address()}) {
    CommandResult health = RunFanout({"health", at, "--keys", c.keys.path()});
    EXPECT_EQ(health.status, 0) << at << ": " << health.err;
  }
}

TEST(SecureTest, AWorkerWithAnotherClustersKeysIsRefusedAndGetsNoTask) {
  KeyedCluster c = KeyedCluster::Start(1);
  ASSERT_TRUE(c.ok());
  ClusterKeys other = ClusterKeys::Make();
  Background stranger = StartFanout({"worker", "--coordinator", c.cluster->workers_endpoint(),
                                     "--keys", other.path(), "--id", "stranger"});
  // It cannot even finish a handshake (another coordinator key): it says so.
  ASSERT_TRUE(Eventually([&] {
    return ReadFile(stranger.err_path).find("no secure handshake with the coordinator") !=
           std::string::npos;
  })) << ReadFile(stranger.err_path);
  EXPECT_NE(ReadFile(stranger.err_path).find("wrong keys?"), std::string::npos);

  CommandResult math = c.Fanout(
      {"submit", "math", "--count", "12", "--iterations", "1000", "--json"}, c.keys.path());
  ASSERT_EQ(math.status, 0) << math.err;
  EXPECT_EQ(math.Json()["ok"], 12);
  EXPECT_EQ(math.Json()["workers_used"], 1) << "only the cluster's own worker ran tasks";
  EXPECT_EQ(c.Workers(), std::set<std::string>{"worker-1"});
  EXPECT_GT(c.Status()["refused"].get<int>(), 0) << "status counts the refused handshakes";
  EXPECT_NE(ReadFile(c.cluster->dir() + "/coordinator.log").find("handshake"), std::string::npos)
      << "the coordinator logs the failed handshake";
  EXPECT_TRUE(stranger.process.Running()) << "refused, it keeps trying; it does not crash";
}

TEST(SecureTest, ClientsWithoutKeysOrWithForeignOrRevokedKeysExit3WithTheReason) {
  KeyedCluster c = KeyedCluster::Start(1);
  ASSERT_TRUE(c.ok());
  ClusterKeys other = ClusterKeys::Make();
  Result<std::string> revoked = AddMember(c.keys.path(), "laptop", Role::kClient);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  // Admitted while its line is there...
  CommandResult before = c.Fanout({"status"}, *revoked);
  EXPECT_EQ(before.status, 0) << before.err;
  // ...shut out once it is deleted.
  Revoke(c.keys.path(), "laptop");

  struct Case {
    std::string keys;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "requires keys: pass --keys DIR"},
      {other.path(), "no secure handshake with the coordinator"},
      {*revoked, ": this client's key is not authorized"},
  };
  for (const Case& k : cases) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"status"},
          std::vector<std::string>{"submit", "math", "--count", "2"},
          std::vector<std::string>{"jobs"}}) {
      const TimePoint started = Now();
      CommandResult r = c.Fanout(args, k.keys);
      EXPECT_EQ(r.status, 3) << args[0] << " with keys '" << k.keys << "': " << r.err;
      EXPECT_NE(r.err.find(k.says), std::string::npos) << args[0] << ": " << r.err;
      if (k.keys == *revoked) {
        EXPECT_NE(r.err.find("refused by the coordinator at " + c.cluster->clients_endpoint()),
                  std::string::npos)
            << r.err;
      }
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
      EXPECT_LT(Now() - started, seconds(6)) << "within its connect timeout (3 s)";
    }
  }
  EXPECT_EQ(c.Fanout({"jobs", "--all", "--json"}, c.keys.path()).Json().size(), 0u)
      << "no stranger's job was accepted";
}

// The bytes of a request each server answers when it is open.
std::string StatusRequestHex() {
  pb::Envelope env = NewEnvelope();
  env.mutable_status();
  std::string hex;
  for (unsigned char ch : env.SerializeAsString()) hex += fmt::format("{:02x}", ch);
  return hex;
}

std::map<std::string, int> PlainPeer(const std::vector<std::string>& endpoints) {
  std::vector<std::string> argv = {"/usr/bin/python3", FANOUT_SOURCE_DIR "/tests/plain_peer.py",
                                   StatusRequestHex(), "1500"};
  argv.insert(argv.end(), endpoints.begin(), endpoints.end());
  Result<client::TempDir> dir = client::TempDir::Make("fanout-plain-peer");
  EXPECT_TRUE(dir.ok());
  Result<Subprocess> probe =
      Subprocess::Spawn(argv, {.stdout_path = *dir / "out", .stderr_path = *dir / "err"});
  EXPECT_TRUE(probe.ok()) << probe.error().message;
  if (!probe.ok()) return {};
  EXPECT_EQ(probe->Wait(seconds(30)), 0) << ReadFile(*dir / "err");
  std::map<std::string, int> replies;
  const nlohmann::json out = nlohmann::json::parse(ReadFile(*dir / "out"), nullptr, false);
  if (out.is_object()) {
    for (const auto& [endpoint, n] : out.items()) replies[endpoint] = n.get<int>();
  }
  return replies;
}

TEST(SecureTest, APlainZeroMqPeerAtEveryPortGetsNothingBack) {
  KeyedCluster c = KeyedCluster::Start(1);
  ASSERT_TRUE(c.ok());
  const std::vector<std::string> ports = {c.cluster->workers_endpoint(),
                                          c.cluster->clients_endpoint(), c.ledger->address()};
  for (const auto& [endpoint, replies] : PlainPeer(ports)) {
    EXPECT_EQ(replies, 0) << endpoint << " answered a stranger";
  }
  EXPECT_EQ(PlainPeer(ports).size(), 3u);
  // The control: the same probe at an open (loopback, keyless) coordinator
  // is answered, so silence above is the keys' doing.
  auto open = client::LocalCluster::Start(ClusterWith(0));
  ASSERT_TRUE(open.ok()) << open.error().message;
  EXPECT_EQ(PlainPeer({(*open)->clients_endpoint()})[(*open)->clients_endpoint()], 1);
  // Still serving its own.
  CommandResult math = c.Fanout({"submit", "math", "--count", "3", "--json"}, c.keys.path());
  EXPECT_EQ(math.status, 0) << math.err;
  EXPECT_GT(c.Status()["refused"].get<int>(), 0);
}

TEST(SecureTest, RevokingAWorkersKeyShutsItOutOnItsNextConnection) {
  KeyedCluster c = KeyedCluster::Start(1);
  ASSERT_TRUE(c.ok());
  Result<std::string> member = AddMember(c.keys.path(), "gpu-1", Role::kWorker);
  ASSERT_TRUE(member.ok()) << member.error().message;
  const std::vector<std::string> argv = {
      "worker", "--coordinator", c.cluster->workers_endpoint(), "--keys", *member, "--id", "gpu-1"};
  std::optional<Background> gpu(StartFanout(argv));
  ASSERT_TRUE(Eventually([&] { return c.Workers().contains("gpu-1"); })) << ReadFile(gpu->err_path);

  // Its line deleted from authorized_keys; its next connection is refused.
  Revoke(c.keys.path(), "gpu-1");
  gpu->process.Kill();
  gpu.reset();
  gpu.emplace(StartFanout(argv));
  ASSERT_TRUE(Eventually([&] {
    return ReadFile(gpu->err_path).find("this worker's key is not authorized") != std::string::npos;
  })) << ReadFile(gpu->err_path);
  EXPECT_TRUE(Eventually([&] { return !c.Workers().contains("gpu-1"); }))
      << "the coordinator forgets the revoked worker";
  CommandResult math = c.Fanout({"submit", "math", "--count", "8", "--json"}, c.keys.path());
  ASSERT_EQ(math.status, 0) << math.err;
  EXPECT_EQ(math.Json()["workers_used"], 1);
  EXPECT_NE(ReadFile(c.cluster->dir() + "/coordinator.log").find("refused"), std::string::npos)
      << "the coordinator logs the refused key";
}

TEST(SecureTest, WithoutKeysAServerListensOnLoopbackOnlyUnlessInsecure) {
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"coordinator", "--workers-endpoint", "tcp://*:5555"},
        std::vector<std::string>{"coordinator", "--clients-endpoint", "tcp://0.0.0.0:5556"},
        std::vector<std::string>{"ledger", "--endpoint", "tcp://*:5557"}}) {
    CommandResult r = RunFanout(argv, seconds(10));
    EXPECT_EQ(r.status, 2) << argv[0] << ": " << r.err;
    EXPECT_NE(r.err.find(" without keys: pass --keys DIR, or --insecure to accept anyone who can "
                         "reach this port"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("listening on " + argv[2]), std::string::npos) << r.err;
  }
  // --insecure listens anyway, with a warning. In a network namespace of its
  // own (where only its loopback exists), so that nothing is really open.
  if (system("unshare --net true 2>/dev/null") != 0) {
    GTEST_SKIP() << "no network namespaces here (unshare --net needs root)";
  }
  Result<client::TempDir> dir = client::TempDir::Make("fanout-insecure");
  ASSERT_TRUE(dir.ok());
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"coordinator", "--workers-endpoint", "tcp://*:5555",
                                 "--clients-endpoint", "tcp://*:5556"},
        std::vector<std::string>{"ledger", "--endpoint", "tcp://*:5557", "--db", ":memory:"}}) {
    std::vector<std::string> command = {"/usr/bin/unshare", "--net", FanoutBinary()};
    command.insert(command.end(), argv.begin(), argv.end());
    command.insert(command.end(), {"--insecure", "--ready-file", *dir / (argv[0] + ".json")});
    Result<Subprocess> server = Subprocess::Spawn(command, {.stderr_path = *dir / argv[0]});
    ASSERT_TRUE(server.ok()) << server.error().message;
    EXPECT_TRUE(Eventually([&] { return std::filesystem::exists(*dir / (argv[0] + ".json")); }))
        << argv[0] << " did not start: " << ReadFile(*dir / argv[0]);
    EXPECT_TRUE(server->Running());
    EXPECT_NE(ReadFile(*dir / argv[0]).find("--insecure: anyone who can reach tcp://*:"),
              std::string::npos)
        << ReadFile(*dir / argv[0]);
    server->Kill();
  }
}

TEST(SecureTest, KeyFilesMissingLooseOrMalformedAreOneLineErrorsAtStart) {
  ClusterKeys keys = ClusterKeys::Make();
  const std::string worker_key = keys.path() + "/worker.key";
  auto start_worker = [&] {
    return RunFanout({"worker", "--coordinator", "tcp://127.0.0.1:1", "--keys", keys.path()},
                     seconds(10));
  };
  chmod(worker_key.c_str(), 0604);
  CommandResult loose = start_worker();
  EXPECT_EQ(loose.status, 2);
  EXPECT_EQ(loose.err, "fanout worker: " + worker_key +
                           " can be read by others (mode 604): chmod 600 " + worker_key + "\n");
  std::ofstream(worker_key, std::ios::trunc) << "not-a-key\n";
  chmod(worker_key.c_str(), 0600);
  CommandResult malformed = start_worker();
  EXPECT_EQ(malformed.status, 2);
  EXPECT_NE(malformed.err.find(worker_key), std::string::npos) << malformed.err;
  EXPECT_EQ(std::count(malformed.err.begin(), malformed.err.end(), '\n'), 1) << malformed.err;
  std::filesystem::remove(worker_key);
  CommandResult missing = start_worker();
  EXPECT_EQ(missing.status, 2);
  EXPECT_EQ(missing.err,
            "fanout worker: " + worker_key + " does not exist (fanout keygen DIR makes it)\n");
  // A coordinator whose authorized_keys is gone admits nobody: it will not start.
  std::filesystem::remove(keys.path() + "/authorized_keys");
  CommandResult coordinator =
      RunFanout({"coordinator", "--keys", keys.path(), "--workers-endpoint", "tcp://127.0.0.1:0",
                 "--clients-endpoint", "tcp://127.0.0.1:0"},
                seconds(10));
  EXPECT_EQ(coordinator.status, 2) << coordinator.err;
  EXPECT_NE(coordinator.err.find("authorized_keys does not exist"), std::string::npos)
      << coordinator.err;
  // keygen never writes over a cluster's keys.
  CommandResult again = RunFanout({"keygen", keys.path()});
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("keys are never overwritten"), std::string::npos) << again.err;
  EXPECT_EQ(RunFanout({"keygen", keys.path(), "--if-missing"}).status, 2)
      << "--if-missing keeps only a whole set";
}

}  // namespace
}  // namespace fanout::testing
