#include "common/security.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/transport.h"

namespace fanout {
namespace {

using std::chrono::milliseconds;

// A fresh directory for keys, removed after the test.
class KeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "keys-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

mode_t Mode(const std::string& path) {
  struct stat st {};
  stat(path.c_str(), &st);
  return st.st_mode & 0777;
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(AuthorizedKeysTest, KeysWithNamesCommentsAndBlankLines) {
  const KeyPair a = NewKeyPair(), b = NewKeyPair();
  auto keys =
      ParseAuthorized("# comment\n\n" + a.public_key + " worker one\n  " + b.public_key + "\n");
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ(keys->at(a.public_key), "worker one");
  EXPECT_EQ(keys->at(b.public_key), "");
}

TEST(AuthorizedKeysTest, AMalformedLineIsNamedByItsNumber) {
  const KeyPair a = NewKeyPair();
  auto keys = ParseAuthorized(a.public_key + " ok\nnot-a-key here\n");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.error().message,
            "line 2: 'not-a-key' is not a CURVE public key (40 Z85 characters)");
  EXPECT_FALSE(ParseAuthorized(a.public_key.substr(0, 39) + "\n").ok()) << "one short";
}

TEST(SecurityTest, AFingerprintIsTwelveHexDigitsOfTheKey) {
  const KeyPair a = NewKeyPair();
  EXPECT_EQ(Fingerprint(a.public_key).size(), 12u);
  EXPECT_EQ(Fingerprint(a.public_key), Fingerprint(a.public_key));
  EXPECT_NE(Fingerprint(a.public_key), Fingerprint(NewKeyPair().public_key));
  EXPECT_EQ(Fingerprint("short"), "?");
}

TEST(SecurityTest, LoopbackIsThisHostOnly) {
  for (const char* local :
       {"tcp://127.0.0.1:5555", "tcp://127.0.0.1:*", "tcp://localhost:1", "tcp://[::1]:5555",
        "ipc:///tmp/x", "inproc://x", "tcp://127.3.4.5:9"}) {
    EXPECT_TRUE(IsLoopback(local)) << local;
  }
  for (const char* open : {"tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.0.0.7:5555",
                           "tcp://eth0:5555", "tcp://[::]:5555", "tcp://example.com:1"}) {
    EXPECT_FALSE(IsLoopback(open)) << open;
  }
  EXPECT_TRUE(CheckListen("tcp://127.0.0.1:5555", false, false).ok());
  EXPECT_TRUE(CheckListen("tcp://*:5555", true, false).ok()) << "keys: anywhere";
  EXPECT_TRUE(CheckListen("tcp://*:5555", false, true).ok()) << "--insecure";
  Status open = CheckListen("tcp://*:5555", false, false);
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.error().message,
            "listening on tcp://*:5555 without keys: pass --keys DIR, or --insecure to accept "
            "anyone who can reach this port");
}

TEST_F(KeysTest, KeyGenWritesEveryRolesPairOwnerOnlyAndNeverOverwrites) {
  ASSERT_TRUE(KeyGen(dir_).ok());
  EXPECT_EQ(Mode(dir_), 0700u);
  for (const char* role : {"coordinator", "ledger", "worker", "client"}) {
    EXPECT_EQ(Mode(dir_ + "/" + role + ".key"), 0600u) << role;
    EXPECT_EQ(Mode(dir_ + "/" + role + ".pub"), 0644u) << role;
  }
  EXPECT_EQ(Mode(dir_ + "/http.token"), 0600u);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/README"));
  // Every role is admitted: the coordinator is a client of the ledger, and a
  // server checks its own health with its key.
  std::ifstream in(dir_ + "/authorized_keys");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto admitted = ParseAuthorized(text);
  ASSERT_TRUE(admitted.ok());
  for (Role role : {Role::kWorker, Role::kClient, Role::kCoordinator, Role::kLedger}) {
    auto keys = Keys::Load(dir_, role);
    ASSERT_TRUE(keys.ok()) << keys.error().message;
    EXPECT_TRUE(admitted->contains((*keys)->own().public_key)) << RoleName(role);
  }
  auto ledger = Keys::Load(dir_, Role::kLedger);
  ASSERT_TRUE(ledger.ok());
  EXPECT_EQ(*(*ledger)->ServerKey(Role::kLedger), (*ledger)->own().public_key);

  Status again = KeyGen(dir_);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already holds keys"), std::string::npos);
}

TEST_F(KeysTest, AMemberGetsItsOwnPairAndIsAdmitted) {
  ASSERT_TRUE(KeyGen(dir_).ok());
  auto member = AddMember(dir_, "gpu-7", Role::kWorker);
  ASSERT_TRUE(member.ok()) << member.error().message;
  EXPECT_EQ(*member, dir_ + "/members/gpu-7");
  auto keys = Keys::Load(*member, Role::kWorker);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_TRUE((*keys)->ServerKey(Role::kCoordinator).ok());
  EXPECT_TRUE((*keys)->ServerKey(Role::kLedger).ok());
  std::ifstream in(dir_ + "/authorized_keys");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(ParseAuthorized(text)->at((*keys)->own().public_key), "gpu-7");
  EXPECT_FALSE(AddMember(dir_, "gpu-7", Role::kWorker).ok()) << "never overwritten";
  EXPECT_FALSE(AddMember(dir_, "../escape", Role::kWorker).ok());
}

TEST_F(KeysTest, BadKeyFilesAreOneLineErrors) {
  ASSERT_TRUE(KeyGen(dir_).ok());
  const std::string key = dir_ + "/worker.key";
  chmod(key.c_str(), 0644);
  auto loose = Keys::Load(dir_, Role::kWorker);
  ASSERT_FALSE(loose.ok());
  EXPECT_EQ(loose.error().message, key + " can be read by others (mode 644): chmod 600 " + key);
  chmod(key.c_str(), 0640);  // a group may read it: Kubernetes mounts secrets with fsGroup
  EXPECT_TRUE(Keys::Load(dir_, Role::kWorker).ok());
  std::filesystem::remove(key);
  auto missing = Keys::Load(dir_, Role::kWorker);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, key + " does not exist (fanout keygen DIR makes it)");
  Write(key, "tooshort\n");
  chmod(key.c_str(), 0600);
  auto shorter = Keys::Load(dir_, Role::kWorker);
  ASSERT_FALSE(shorter.ok());
  EXPECT_EQ(shorter.error().message, key + " is not a CURVE key (40 Z85 characters; it holds 8)");
}

// A CURVE server with its ZAP handler, and clients with various keys.
class CurveTest : public KeysTest {
 protected:
  void SetUp() override {
    KeysTest::SetUp();
    ASSERT_TRUE(KeyGen(dir_).ok());
    server_keys_ = *Keys::Load(dir_, Role::kCoordinator);
  }

  // Starts the server (with a ZAP handler unless `zap` is false).
  void Serve(bool zap = true) {
    if (zap) {
      auto handler = ZapHandler::Start(ctx_, dir_ + "/authorized_keys", "test");
      ASSERT_TRUE(handler.ok()) << handler.error().message;
      zap_ = std::move(*handler);
    }
    server_.emplace(MakeSocket(ctx_, zmq::socket_type::router));
    ASSERT_TRUE(MakeCurveServer(*server_, *server_keys_).ok());
    auto bound = Bind(*server_, "tcp://127.0.0.1:*");
    ASSERT_TRUE(bound.ok());
    endpoint_ = *bound;
  }

  // Sends a Hello from a client with `keys` (none: plain) and says whether
  // the server got it within `wait`; `why` gets the client's explanation.
  bool Reaches(const std::shared_ptr<const Keys>& keys, std::string* why,
               Duration wait = milliseconds(1500)) {
    zmq::socket_t client = MakeSocket(ctx_, zmq::socket_type::dealer);
    if (keys) {
      EXPECT_TRUE(MakeCurveClient(client, *keys, Role::kCoordinator).ok());
    }
    HandshakeWatch watch =
        HandshakeWatch::Client(ctx_, client, "the coordinator", "client", keys != nullptr);
    EXPECT_TRUE(Connect(client, endpoint_).ok());
    pb::Envelope hello = NewEnvelope();
    hello.mutable_hello()->set_worker_id("w");
    Send(client, hello);
    Message msg;
    const TimePoint give_up = Now() + wait;
    bool got = false;
    while (Now() < give_up && !got) {
      got = RecvMessage(*server_, msg);
      watch.Poll();
      if (!watch.refused().empty()) break;
      std::this_thread::sleep_for(milliseconds(5));
    }
    *why = watch.Explain(wait);
    return got;
  }

  zmq::context_t ctx_;
  std::shared_ptr<const Keys> server_keys_;
  std::unique_ptr<ZapHandler> zap_;
  std::optional<zmq::socket_t> server_;
  std::string endpoint_;
};

TEST_F(CurveTest, AnAuthorizedKeyGetsInAndOthersAreToldWhy) {
  Serve();
  std::string why;
  EXPECT_TRUE(Reaches(*Keys::Load(dir_, Role::kClient), &why)) << why;
  EXPECT_EQ(zap_->admitted(), 1u);

  // Another cluster's keys: its coordinator.pub is not this server's key,
  // so the server cannot even answer...
  const std::string other = dir_ + "-other";
  std::filesystem::remove_all(other);
  ASSERT_TRUE(KeyGen(other).ok());
  auto foreign = *Keys::Load(other, Role::kClient);
  EXPECT_FALSE(Reaches(foreign, &why, milliseconds(800)));
  EXPECT_EQ(why, "no secure handshake with the coordinator within 0.8 s: wrong keys?");
  // ...and with this server's key, its client key is refused, and it is told.
  std::filesystem::copy_file(dir_ + "/coordinator.pub", other + "/coordinator.pub",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(Reaches(foreign, &why));
  EXPECT_EQ(why, "refused by the coordinator: this client's key is not authorized");
  EXPECT_GE(zap_->refused(), 1u);
  std::filesystem::remove_all(other);

  // No keys at all.
  EXPECT_FALSE(Reaches(nullptr, &why));
  EXPECT_EQ(why, "the coordinator requires keys: pass --keys DIR (fanout keygen makes them)");
}

TEST_F(CurveTest, RemovingAKeyShutsItOutAtItsNextConnection) {
  Serve();
  auto client = *Keys::Load(dir_, Role::kClient);
  std::string why;
  ASSERT_TRUE(Reaches(client, &why)) << why;
  // authorized_keys without the client's line (and a newer time).
  std::ifstream in(dir_ + "/authorized_keys");
  std::string text((std::istreambuf_iterator<char>(in)), {}), kept;
  for (size_t at = 0; at < text.size();) {
    const size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at + 1);
    if (line.find(client->own().public_key) == std::string::npos) kept += line;
    at = end + 1;
  }
  std::this_thread::sleep_for(milliseconds(20));
  Write(dir_ + "/authorized_keys", kept);
  EXPECT_FALSE(Reaches(client, &why));
  EXPECT_EQ(why, "refused by the coordinator: this client's key is not authorized");
}

TEST_F(CurveTest, WithoutAZapHandlerNobodyGetsIn) {
  Serve(/*zap=*/false);
  std::string why;
  EXPECT_FALSE(Reaches(*Keys::Load(dir_, Role::kClient), &why, milliseconds(800)))
      << "ZeroMQ admits every key when no ZAP handler answers, unless the domain is enforced";
}

TEST_F(CurveTest, AKeyedClientOfAPlainServerIsToldBothSidesNeedKeys) {
  server_.emplace(MakeSocket(ctx_, zmq::socket_type::router));
  endpoint_ = *Bind(*server_, "tcp://127.0.0.1:*");
  std::string why;
  EXPECT_FALSE(Reaches(*Keys::Load(dir_, Role::kClient), &why));
  EXPECT_EQ(why,
            "the coordinator does not use keys, but this client does (--keys): both sides need "
            "them, or neither");
}

TEST_F(CurveTest, AServerCountsPeersThatFailTheHandshake) {
  Serve();
  HandshakeWatch watch = HandshakeWatch::Server(ctx_, *server_, "test server");
  std::string why;
  EXPECT_FALSE(Reaches(nullptr, &why));  // a plain peer
  for (int i = 0; i < 100 && watch.failed() == 0; ++i) {
    watch.Poll();
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GE(watch.failed(), 1u);
}

}  // namespace
}  // namespace fanout
