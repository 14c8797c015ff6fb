// The bank job with a real ledger, coordinator and workers: the safe modes
// keep every dollar under every model, the unsafe one loses some, and a
// ledger killed mid-job loses nothing and applies nothing twice.

#include "jobs/bank/bank.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <iostream>
#include <thread>

#include "client/job_client.h"
#include "client/local_cluster.h"
#include "common/transport.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;

struct Bank {
  std::unique_ptr<client::LocalService> ledger;
  std::unique_ptr<client::LocalCluster> cluster;
};

Bank StartBank(int workers, std::vector<std::string> ledger_flags = {}) {
  Bank bank;
  auto ledger = client::StartLedger(FanoutBinary(), std::move(ledger_flags));
  EXPECT_TRUE(ledger.ok()) << ledger.error().message;
  if (!ledger) return bank;
  bank.ledger = std::move(*ledger);
  client::ClusterOptions options = ClusterWith(workers);
  options.coordinator_flags = {"--ledger", bank.ledger->address()};
  auto cluster = client::LocalCluster::Start(options);
  EXPECT_TRUE(cluster.ok()) << cluster.error().message;
  if (cluster) bank.cluster = std::move(*cluster);
  return bank;
}

std::vector<std::string> BankArgs(const Bank& bank, const std::string& mode,
                                  const std::string& model) {
  return {"submit",      "bank", "--coordinator", bank.cluster->clients_endpoint(),
          "--mode",      mode,   "--model",       model,
          "--verify-ms", "10",   "--json"};
}

int64_t Lost(const nlohmann::json& j) {
  return j["ledger"]["expected_sum"].get<int64_t>() - j["ledger"]["sum"].get<int64_t>();
}

TEST(BankTest, LockedAndAtomicKeepEveryDollarUnderEveryModel) {
  Bank bank = StartBank(2, {"--db", ":memory:"});
  ASSERT_TRUE(bank.cluster);
  for (const std::string mode : {"locked", "atomic"}) {
    for (const std::string model : {"sync", "threads", "async"}) {
      for (int run = 0; run < 3; ++run) {
        SCOPED_TRACE(mode + " " + model + " run " + std::to_string(run));
        CommandResult r = RunFanout(BankArgs(bank, mode, model));
        ASSERT_EQ(r.status, 0) << r.err;
        const nlohmann::json j = r.Json();
        EXPECT_EQ(j["kind"], "bank");
        EXPECT_EQ(j["ok"], 20);
        EXPECT_EQ(j["ledger"]["expected_sum"], 5000);
        EXPECT_EQ(j["ledger"]["sum"], 5000) << j["ledger"].dump();
        EXPECT_EQ(j["ledger"]["balances"].size(), 5u);
        EXPECT_TRUE(j["results"][0]["value"].contains("amount"));
      }
    }
  }
}

TEST(BankTest, UnsafeLosesMoneyWhenTransfersOverlap) {
  Bank bank = StartBank(2, {"--db", ":memory:"});
  ASSERT_TRUE(bank.cluster);
  for (const std::string model : {"threads", "async"}) {
    int64_t lost = 0;
    for (int run = 0; run < 5 && lost == 0; ++run) {
      CommandResult r = RunFanout(BankArgs(bank, "unsafe", model));
      ASSERT_EQ(r.Json()["ledger"].is_object(), true) << r.err;
      lost = Lost(r.Json());
      // Wrong money is a wrong result, lesson or not.
      EXPECT_EQ(r.status, lost == 0 ? 0 : 1) << lost;
    }
    std::cout << "unsafe under " << model << ": " << lost << " lost (expected 5000, got "
              << 5000 - lost << ")\n";
    EXPECT_NE(lost, 0) << "unsafe transfers under " << model << " never lost an update";
  }
}

// Kills `ledger` once `after` transfers are done and starts it again (same
// port, same file) a moment later.
class KillLedger : public client::JobObserver {
 public:
  KillLedger(client::LocalService& ledger, uint32_t after) : ledger_(ledger), after_(after) {}
  void OnDone(const client::JobReport& report, const client::TaskRecord&) override {
    if (report.finished != after_ || restarted_) return;
    ledger_.process().Kill();
    std::this_thread::sleep_for(milliseconds(300));
    restarted_ = ledger_.Restart().ok();
  }
  bool restarted_ = false;

 private:
  client::LocalService& ledger_;
  uint32_t after_;
};

TEST(BankTest, LedgerKilledMidJobLosesNothingAndAppliesNothingTwice) {
  const std::string endpoint = fmt::format("tcp://127.0.0.1:{}", FreePort());
  auto dir = client::TempDir::Make("bank-test");
  ASSERT_TRUE(dir.ok());
  Bank bank = StartBank(2, {"--endpoint", endpoint, "--db", *dir / "ledger.db"});
  ASSERT_TRUE(bank.cluster);

  pb::JobSpec spec;
  spec.set_model(pb::ASYNC);
  spec.set_count(400);
  spec.set_concurrency(8);
  pb::BankJob* b = spec.mutable_bank();
  b->set_accounts(5);
  b->set_initial(100'000);  // no overdraft: every transfer must apply
  b->set_amount_max(100);
  b->set_seed(42);
  b->set_mode(pb::ATOMIC);
  b->set_verify_ms(10);
  client::JobClient client({.endpoint = bank.cluster->clients_endpoint()});
  KillLedger killer(*bank.ledger, 100);
  Result<client::JobReport> report = client.Run(spec, killer);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(killer.restarted_) << "the ledger was not killed and restarted";
  EXPECT_EQ(report->done.ok(), 400u);
  EXPECT_EQ(report->duplicate_results, 0u);

  // Each planned transfer applied exactly once, in whatever order: the
  // final balances are the opening ones plus every planned movement.
  std::map<std::string, int64_t> expected;
  for (uint32_t i = 1; i <= 5; ++i) expected[fmt::format("bank_{}", i)] = 100'000;
  for (uint32_t i = 1; i <= 400; ++i) {
    const jobs::bank::PlannedTransfer t = jobs::bank::PlanTransfer(*b, i);
    expected[fmt::format("bank_{}", t.from)] -= t.amount;
    expected[fmt::format("bank_{}", t.to)] += t.amount;
  }
  const pb::LedgerSnapshot& ledger = report->done.ledger();
  EXPECT_EQ(ledger.error(), "");
  EXPECT_EQ(ledger.sum(), 500'000);
  const std::map<std::string, int64_t> got(ledger.balances().begin(), ledger.balances().end());
  EXPECT_EQ(got, expected);
}

TEST(BankTest, LedgerAnswersGarbageWithAnErrorAndKeepsServing) {
  auto ledger = client::StartLedger(FanoutBinary(), {"--db", ":memory:"});
  ASSERT_TRUE(ledger.ok()) << ledger.error().message;
  zmq::context_t ctx(1);
  zmq::socket_t dealer = MakeSocket(ctx, zmq::socket_type::dealer);
  ASSERT_TRUE(Connect(dealer, (*ledger)->address()).ok());
  auto ask = [&](zmq::message_t frame) -> std::optional<pb::Envelope> {
    (void)SendFrame(dealer, frame);
    std::vector<zmq::pollitem_t> items = {{dealer.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, milliseconds(5000));
    Message msg;
    if (!RecvMessage(dealer, msg)) return std::nullopt;
    auto env = Decode(msg.frames.back());
    return env ? std::optional(*env) : std::nullopt;
  };
  auto garbage = ask(zmq::message_t(std::string("\xff\x00garbage", 9)));
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->error().code(), pb::Error::BAD_FRAME);

  pb::Envelope unknown = NewEnvelope();
  unknown.mutable_ledger_request()->set_request_id(7);
  unknown.mutable_ledger_request()->set_book("nobody");
  unknown.mutable_ledger_request()->mutable_get()->set_account("bank_1");
  auto reply = ask(Encode(unknown));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->ledger_reply().request_id(), 7u);
  EXPECT_FALSE(reply->ledger_reply().ok());
  EXPECT_EQ(reply->ledger_reply().error(), "unknown book 'nobody'");
  EXPECT_TRUE((*ledger)->process().Running());
}

TEST(BankTest, HealthSaysWhichServicesAnswer) {
  Bank bank = StartBank(1, {"--db", ":memory:"});
  ASSERT_TRUE(bank.cluster);
  auto site = client::StartSite(FanoutBinary(), {});
  ASSERT_TRUE(site.ok()) << site.error().message;
  for (const std::string& up : {bank.cluster->clients_endpoint(), bank.ledger->address(),
                                (*site)->address() + "/healthz"}) {
    CommandResult r = RunFanout({"health", up});
    EXPECT_EQ(r.status, 0) << up << ": " << r.err;
    EXPECT_EQ(r.out, up + " is up\n");
  }
  const std::string nobody = fmt::format("tcp://127.0.0.1:{}", FreePort());
  CommandResult down = RunFanout({"health", nobody, "--timeout-ms", "300"});
  EXPECT_EQ(down.status, 3);
  EXPECT_EQ(down.err, "fanout health: " + nobody + " did not answer within 0.3 s\n");
  CommandResult missing = RunFanout({"health", (*site)->address() + "/no-such-page"});
  EXPECT_EQ(missing.status, 3);
  EXPECT_NE(missing.err.find("HTTP 404"), std::string::npos) << missing.err;
}

// --compare works for every kind: the bank job under each model, every run
// judged by its sum (the unsafe mode's loss is its lesson, not a failure).
TEST(BankTest, CompareRunsEveryModelAndJudgesEachBySum) {
  Bank bank = StartBank(2, {"--db", ":memory:"});
  ASSERT_TRUE(bank.cluster);
  std::vector<std::string> args = BankArgs(bank, "atomic", "sync");
  args.push_back("--compare");
  CommandResult r = RunFanout(args);
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = r.Json();
  ASSERT_EQ(j["runs"].size(), 4u) << r.out;
  for (const auto& run : j["runs"]) {
    EXPECT_EQ(run["result"], "sum 5000 right") << run;
    EXPECT_EQ(run["right"], true);
  }
  EXPECT_EQ(j["runs"][3]["workers_used"], 2);
}

TEST(BankTest, AJobWaitingForALedgerThatDoesNotAnswerSaysSoAtOnce) {
  // A coordinator pointed at a ledger nobody runs.
  client::ClusterOptions options = ClusterWith(1);
  options.coordinator_flags = {"--ledger", fmt::format("tcp://127.0.0.1:{}", FreePort())};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  Background job = StartFanout(
      {"submit", "bank", "--coordinator", (*cluster)->clients_endpoint(), "--count", "2"});
  const TimePoint give_up = Now() + std::chrono::seconds(3);
  while (ReadFile(job.out_path).find("waiting: the ledger at") == std::string::npos &&
         Now() < give_up) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_NE(ReadFile(job.out_path).find("has not answered yet (is it running?)"), std::string::npos)
      << ReadFile(job.out_path);
  job.process.Signal(SIGINT);
  CommandResult r = job.Finish(std::chrono::seconds(10));
  EXPECT_EQ(r.status, 130) << "cancelled at once, not after the ledger's 30 s: " << r.out << r.err;
}

TEST(BankTest, BankJobWithoutALedgerIsRejected) {
  client::ClusterOptions options = ClusterWith(1);
  options.coordinator_flags = {"--ledger", ""};
  auto cluster = client::LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CommandResult r = RunFanout({"submit", "bank", "--coordinator", (*cluster)->clients_endpoint()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--ledger"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fanout::testing
