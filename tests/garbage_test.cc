// Bad input at every socket of every process: random, truncated, oversized
// and wrong-version frames, and well-formed messages with absurd values, at
// the coordinator's two sockets, the ledger's, a worker's (from a fake
// coordinator) and the Pokédex site's HTTP port. Everything must stay up and
// answer properly afterwards.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>
#include <random>
#include <thread>

#include "client/job_client.h"
#include "client/local_cluster.h"
#include "common/security.h"
#include "common/transport.h"
#include "jobs/web/fetch.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kMessagesPerSocket = 3000;

std::string RandomBytes(std::mt19937& rng, size_t max) {
  std::string s(std::uniform_int_distribution<size_t>(0, max)(rng), '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Well-formed envelopes a peer of `side` could send, with absurd values.
std::vector<pb::Envelope> Absurd(const std::string& side) {
  std::vector<pb::Envelope> out;
  auto add = [&](auto fill) {
    pb::Envelope env = NewEnvelope();
    fill(env);
    out.push_back(std::move(env));
  };
  if (side == "clients") {
    for (uint32_t count : {0u, 1'000'000'000u}) {
      add([&](pb::Envelope& e) {
        e.mutable_submit()->mutable_spec()->set_count(count);
        e.mutable_submit()->mutable_spec()->mutable_math()->set_iterations(10);
      });
    }
    add([](pb::Envelope& e) { e.mutable_submit()->mutable_spec()->set_count(5); });  // no kind
    add([](pb::Envelope& e) {
      auto* spec = e.mutable_submit()->mutable_spec();
      spec->set_count(5);
      spec->mutable_math()->set_iterations(uint64_t{1} << 63);  // "negative" iterations
    });
    add([](pb::Envelope& e) {
      auto* spec = e.mutable_submit()->mutable_spec();
      spec->set_count(3);
      spec->mutable_web();  // neither a template nor URLs
    });
    add([](pb::Envelope& e) {
      auto* spec = e.mutable_submit()->mutable_spec();
      spec->set_count(3);
      spec->mutable_bank()->set_accounts(0);
    });
    add([](pb::Envelope& e) { e.mutable_cancel()->set_job_id("no-such-job"); });
    add([](pb::Envelope& e) { e.mutable_watch()->set_job_id(std::string(10'000, 'x')); });
    add([](pb::Envelope& e) { e.mutable_task()->set_index(1); });  // the wrong way round
  } else if (side == "workers") {
    add([](pb::Envelope& e) { e.mutable_hello()->set_worker_id(""); });
    for (uint32_t index : {0u, 1u, 4'000'000'000u}) {
      add([&](pb::Envelope& e) {
        e.mutable_result()->set_job_id("no-such-job");
        e.mutable_result()->set_index(index);
      });
    }
    add([](pb::Envelope& e) { e.mutable_returned()->set_index(7); });
    add([](pb::Envelope& e) { e.mutable_heartbeat()->set_sent_us(-1); });
    add([](pb::Envelope& e) { e.mutable_submit()->mutable_spec()->set_count(1); });
  } else if (side == "ledger") {
    add([](pb::Envelope& e) {
      auto* r = e.mutable_ledger_request();
      r->set_book("b");
      r->mutable_reset()->set_accounts(1'000'000'000);
    });
    add([](pb::Envelope& e) {
      auto* r = e.mutable_ledger_request();
      r->set_book("b");
      r->mutable_transfer()->set_amount(-5);
    });
    add([](pb::Envelope& e) { e.mutable_ledger_request()->set_book(""); });  // no op
    add([](pb::Envelope& e) { e.mutable_ledger_request()->mutable_unlock()->set_owner("nobody"); });
    add([](pb::Envelope& e) { e.mutable_result()->set_index(1); });
  } else if (side == "worker") {
    add([](pb::Envelope& e) { e.mutable_task()->set_index(0); });  // no payload, no job
    add([](pb::Envelope& e) {
      e.mutable_task()->set_job_id("j");
      e.mutable_task()->set_index(1);
      e.mutable_task()->set_model(static_cast<pb::Model>(99));
      e.mutable_task()->mutable_math()->set_iterations(5);
    });
    add([](pb::Envelope& e) {
      e.mutable_task()->set_job_id("j");
      e.mutable_task()->set_index(2);
      e.mutable_task()->mutable_fetch_page()->set_url("");
    });
    add([](pb::Envelope& e) { e.mutable_heartbeat()->set_echo_us(INT64_MAX); });
    add([](pb::Envelope& e) { e.mutable_error()->set_code(static_cast<pb::Error::Code>(77)); });
  }
  return out;
}

// The i-th bad message for `side`: one or more frames.
std::vector<zmq::message_t> Garbage(std::mt19937& rng, int i, const std::string& side) {
  static const std::map<std::string, std::vector<pb::Envelope>> absurd = {
      {"clients", Absurd("clients")},
      {"workers", Absurd("workers")},
      {"ledger", Absurd("ledger")},
      {"worker", Absurd("worker")}};
  const std::vector<pb::Envelope>& valid = absurd.at(side);
  std::vector<zmq::message_t> frames;
  std::string bytes = valid[rng() % valid.size()].SerializeAsString();
  switch (i % 7) {
    case 0:  // noise
      frames.emplace_back(RandomBytes(rng, 512));
      break;
    case 1:  // truncated
      bytes.resize(std::uniform_int_distribution<size_t>(0, bytes.size())(rng));
      frames.emplace_back(bytes);
      break;
    case 2: {  // another protocol version
      pb::Envelope env = valid[rng() % valid.size()];
      env.set_version(env.version() + 1 + rng() % 5);
      frames.emplace_back(env.SerializeAsString());  // Encode() insists on ours
      break;
    }
    case 3:  // bit flips
      for (int flips = 0; flips < 3 && !bytes.empty(); ++flips) {
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
      }
      frames.emplace_back(bytes);
      break;
    case 4:  // an empty frame, or hundreds of frames in one message
      if (rng() % 2) {
        frames.emplace_back();
      } else {
        for (int f = 0; f < 300; ++f) frames.emplace_back(RandomBytes(rng, 16));
      }
      break;
    default:  // well-formed, absurd values
      frames.emplace_back(bytes);
      break;
  }
  return frames;
}

// Raw bytes over plain TCP (no ZMTP handshake, no HTTP) to 127.0.0.1:port.
void RawTcpNoise(int port, std::mt19937& rng, int connections) {
  for (int c = 0; c < connections; ++c) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const std::string noise = c % 10 == 0 ? std::string(1 << 20, 'A') : RandomBytes(rng, 2048);
      (void)!write(fd, noise.data(), noise.size());
    }
    close(fd);
  }
}

int PortOf(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

// What came back to `dealer` until it has been quiet for a while: how many
// refusals (errors, rejections, failed ledger replies) and messages in all.
std::pair<int, int> Answers(zmq::socket_t& dealer, Duration quiet) {
  int refusals = 0, messages = 0;
  Message msg;
  for (TimePoint quiet_until = Now() + quiet; Now() < quiet_until;) {
    std::vector<zmq::pollitem_t> items = {{dealer.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, milliseconds(100));
    while (RecvMessage(dealer, msg)) {
      for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
        Result<pb::Envelope> env = Decode(frame);
        ++messages;
        refusals += env && (env->has_error() || env->has_rejected() ||
                            (env->has_ledger_reply() && !env->ledger_reply().ok()));
      }
      quiet_until = Now() + milliseconds(300);
    }
  }
  return {refusals, messages};
}

// Floods `endpoint` with bad messages from a DEALER (a CURVE client of
// `server` with `keys`, when given: a member sending garbage), with one
// oversized frame (over the frame limit: ZeroMQ drops that connection, the
// DEALER reconnects), then plain-TCP noise.
void Flood(zmq::context_t& ctx, const std::string& endpoint, const std::string& side,
           std::mt19937& rng, const Keys* keys = nullptr, Role server = Role::kCoordinator) {
  zmq::socket_t dealer = MakeSocket(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::sndhwm, 0);
  ASSERT_TRUE(PrepareClient(dealer, keys, server).ok());
  ASSERT_TRUE(Connect(dealer, endpoint).ok());
  for (int i = 0; i < kMessagesPerSocket; ++i) {
    std::vector<zmq::message_t> frames = Garbage(rng, i, side);
    (void)TrySendBatch(dealer, {}, frames);
    if (i == kMessagesPerSocket / 2) {
      zmq::message_t huge(kMaxFrameBytes + 1);
      (void)TrySendBatch(dealer, {}, {&huge, 1});
    }
  }
  // Count the refusals that come back: proof the flood arrived and was read.
  const int refusals = Answers(dealer, milliseconds(1000)).first;
  std::cout << side << ": " << refusals << " refusals for " << kMessagesPerSocket
            << " bad messages\n";
  EXPECT_GT(refusals, kMessagesPerSocket / 4) << side << " did not answer the garbage";
  RawTcpNoise(PortOf(endpoint), rng, 50);
}

TEST(GarbageTest, EveryServiceSurvivesAFloodOfBadFramesAndStillServes) {
  auto ledger = client::StartLedger(FanoutBinary(), {"--db", ":memory:"});
  ASSERT_TRUE(ledger.ok()) << ledger.error().message;
  auto site = client::StartSite(FanoutBinary(), {});
  ASSERT_TRUE(site.ok()) << site.error().message;
  client::ClusterOptions options = ClusterWith(2);
  options.coordinator_flags = {"--ledger", (*ledger)->address()};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;

  zmq::context_t ctx(1);
  std::mt19937 rng(2026);
  Flood(ctx, (*cluster)->workers_endpoint(), "workers", rng);
  Flood(ctx, (*cluster)->clients_endpoint(), "clients", rng);
  Flood(ctx, (*ledger)->address(), "ledger", rng);
  const std::string site_url = (*site)->address();
  const int site_port = PortOf(site_url.substr(0, site_url.find('/', 7)));
  RawTcpNoise(site_port, rng, 200);

  EXPECT_TRUE((*cluster)->coordinator().Running());
  for (Subprocess& w : (*cluster)->workers()) EXPECT_TRUE(w.Running());
  EXPECT_TRUE((*ledger)->process().Running());
  EXPECT_TRUE((*site)->process().Running());

  // And they still do their job: a math job, a bank job, a page.
  ASSERT_TRUE((*cluster)->WaitForWorkers(2, seconds(10)).ok());
  const pb::JobSpec math_job = client::MathJob(pb::THREADS, 20, 1000);
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  client::JobObserver quiet;
  Result<client::JobReport> math = client.Run(math_job, quiet);
  ASSERT_TRUE(math.ok()) << math.error().message;
  EXPECT_EQ(math->done.ok(), 20u);
  EXPECT_EQ(math->tasks[4].result.number(), 1005.0);
  CommandResult bank = RunFanout({"submit", "bank", "--coordinator", (*cluster)->clients_endpoint(),
                                  "--mode", "atomic", "--json"});
  ASSERT_EQ(bank.status, 0) << bank.err;
  EXPECT_EQ(bank.Json()["ledger"]["sum"], bank.Json()["ledger"]["expected_sum"]);
  pb::FetchPage page;
  page.set_url(site_url + "/pokedex/25");
  page.set_timeout_ms(5000);
  pb::Result fetched;
  jobs::web::FetchBlocking(page, fetched);
  EXPECT_EQ(fetched.text(), "Pikachu") << fetched.error();
}

// Strangers at a keyed socket: a CURVE client with a key of its own (not
// admitted) and a plain ZeroMQ peer send garbage; neither hears a thing.
void Strangers(zmq::context_t& ctx, const std::string& endpoint, const std::string& side,
               const Keys& keys, Role server, std::mt19937& rng) {
  const KeyPair random = NewKeyPair();
  Result<std::string> server_key = keys.ServerKey(server);
  ASSERT_TRUE(server_key.ok());
  for (bool curve : {true, false}) {
    zmq::socket_t dealer = MakeSocket(ctx, zmq::socket_type::dealer);
    if (curve) {
      dealer.set(zmq::sockopt::curve_serverkey, *server_key);
      dealer.set(zmq::sockopt::curve_publickey, random.public_key);
      dealer.set(zmq::sockopt::curve_secretkey, random.secret_key);
    }
    ASSERT_TRUE(Connect(dealer, endpoint).ok());
    for (int i = 0; i < 300; ++i) {
      std::vector<zmq::message_t> frames = Garbage(rng, i, side);
      (void)TrySendBatch(dealer, {}, frames);
    }
    EXPECT_EQ(Answers(dealer, milliseconds(1500)).second, 0)
        << side << " answered a " << (curve ? "CURVE client with a random key" : "plain peer");
  }
}

TEST(GarbageTest, KeyedServicesTellStrangersNothingAndSurviveAMembersGarbage) {
  Result<client::TempDir> dir = client::TempDir::Make("fanout-garbage-keys");
  ASSERT_TRUE(dir.ok());
  const std::string keys_dir = *dir / "keys";
  ASSERT_TRUE(KeyGen(keys_dir).ok());
  auto ledger = client::StartLedger(FanoutBinary(), {"--db", ":memory:", "--keys", keys_dir});
  ASSERT_TRUE(ledger.ok()) << ledger.error().message;
  client::ClusterOptions options = ClusterWith(2);
  options.keys = keys_dir;
  options.coordinator_flags = {"--ledger", (*ledger)->address()};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  auto worker_keys = Keys::Load(keys_dir, Role::kWorker);
  auto client_keys = Keys::Load(keys_dir, Role::kClient);
  auto coordinator_keys = Keys::Load(keys_dir, Role::kCoordinator);
  ASSERT_TRUE(worker_keys.ok() && client_keys.ok() && coordinator_keys.ok());

  ASSERT_TRUE((*cluster)->WaitForWorkers(2, seconds(10)).ok());
  client::JobClient client(
      {.endpoint = (*cluster)->clients_endpoint(), .keys = (*cluster)->client_keys()});
  // A job that runs through all that follows (~5 ms a task, 2 x 6 threads).
  Result<std::string> running = client.Detach(client::MathJob(pb::THREADS, 2000, 50'000));
  ASSERT_TRUE(running.ok()) << running.error().message;

  zmq::context_t ctx(1);
  std::mt19937 rng(2027);
  const std::string workers = (*cluster)->workers_endpoint();
  const std::string clients = (*cluster)->clients_endpoint();
  const std::string ledger_at = (*ledger)->address();
  Strangers(ctx, workers, "workers", **worker_keys, Role::kCoordinator, rng);
  Strangers(ctx, clients, "clients", **client_keys, Role::kCoordinator, rng);
  Strangers(ctx, ledger_at, "ledger", **coordinator_keys, Role::kLedger, rng);
  // Members past the handshake, sending garbage: answered as before.
  Flood(ctx, workers, "workers", rng, worker_keys->get(), Role::kCoordinator);
  Flood(ctx, clients, "clients", rng, client_keys->get(), Role::kCoordinator);
  Flood(ctx, ledger_at, "ledger", rng, coordinator_keys->get(), Role::kLedger);

  EXPECT_TRUE((*cluster)->coordinator().Running());
  for (Subprocess& w : (*cluster)->workers()) EXPECT_TRUE(w.Running());
  EXPECT_TRUE((*ledger)->process().Running());
  client::JobObserver quiet;
  Result<client::JobReport> meanwhile = client.Watch(*running, quiet);
  ASSERT_TRUE(meanwhile.ok()) << meanwhile.error().message;
  EXPECT_EQ(meanwhile->done.ok(), 2000u) << "the job running meanwhile completes";
  Result<client::JobReport> math = client.Run(client::MathJob(pb::THREADS, 20, 1000), quiet);
  ASSERT_TRUE(math.ok()) << math.error().message;
  EXPECT_EQ(math->done.ok(), 20u);
  CommandResult bank = RunFanout({"submit", "bank", "--coordinator", clients, "--keys", keys_dir,
                                  "--mode", "atomic", "--json"});
  ASSERT_EQ(bank.status, 0) << bank.err;
  EXPECT_EQ(bank.Json()["ledger"]["sum"], bank.Json()["ledger"]["expected_sum"]);
}

TEST(GarbageTest, AWorkerFedGarbageByItsCoordinatorStaysUpAndAnswers) {
  zmq::context_t ctx(1);
  zmq::socket_t router = MakeSocket(ctx, zmq::socket_type::router);
  Result<std::string> at = Bind(router, "tcp://127.0.0.1:*");
  ASSERT_TRUE(at.ok());
  Background worker = StartFanout({"worker", "--coordinator", *at, "--id", "victim"});

  auto next = [&](auto wanted, Duration timeout) -> std::optional<pb::Envelope> {
    const TimePoint until = Now() + timeout;
    Message msg;
    while (Now() < until) {
      std::vector<zmq::pollitem_t> items = {{router.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, milliseconds(100));
      while (RecvMessage(router, msg)) {
        for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/true)) {
          Result<pb::Envelope> env = Decode(frame);
          if (env && wanted(*env)) return *env;
        }
      }
    }
    return std::nullopt;
  };
  // The worker's routing id is the first frame of whatever it sends; it
  // changes when the worker reconnects (a garbled Error may read as "unknown
  // peer: say Hello again", which it obeys on a fresh connection).
  std::string peer;
  auto follow = [&](Duration wait) {
    Message msg;
    for (const TimePoint until = Now() + wait; Now() < until;) {
      std::vector<zmq::pollitem_t> items = {{router.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, milliseconds(50));
      bool got = false;
      while (RecvMessage(router, msg)) {
        peer = PeerName(msg.frames[0]);
        got = true;
      }
      if (got) return;
    }
  };
  follow(seconds(10));
  ASSERT_FALSE(peer.empty()) << "the worker never said Hello";

  std::mt19937 rng(7);
  int reconnects = 0;
  for (int i = 0; i < kMessagesPerSocket; ++i) {
    std::vector<zmq::message_t> frames = Garbage(rng, i, "worker");
    if (TrySendBatch(router, peer, frames) == Sent::kGone) {
      ++reconnects;
      follow(seconds(5));
    }
  }
  EXPECT_LT(reconnects, 100);
  std::this_thread::sleep_for(milliseconds(300));
  follow(milliseconds(500));
  // A real task after all that: it runs and its result comes back.
  pb::Envelope task = NewEnvelope();
  task.mutable_task()->set_job_id("real");
  task.mutable_task()->set_index(1);
  task.mutable_task()->set_attempt(1);
  task.mutable_task()->set_model(pb::SYNC);
  task.mutable_task()->mutable_math()->set_start(1);
  task.mutable_task()->mutable_math()->set_iterations(100);
  ASSERT_TRUE(SendTo(router, peer, task));
  auto result =
      next([](const pb::Envelope& e) { return e.has_result() && e.result().job_id() == "real"; },
           seconds(10));
  ASSERT_TRUE(result) << "no result from the worker after the flood";
  EXPECT_TRUE(result->result().ok()) << result->result().error();
  EXPECT_EQ(result->result().number(), 101.0);
  EXPECT_TRUE(worker.process.Running()) << ReadFile(worker.err_path);
}

}  // namespace
}  // namespace fanout::testing
