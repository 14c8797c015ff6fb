// bench/ledger: how fast the ledger moves money. Prints one JSON object.
//
//  - straight into the ledger: atomic transfers from one client with 64
//    requests in flight, with --db :memory: and with the durable default
//    (SQLite WAL, synchronous=FULL, group commit);
//  - through a whole bank job (--verify-ms 0 --gap-us 0) on one async worker;
//  - the article's 20-transfer job under each mode and model (the article:
//    sync 2.08 s, async unsafe 0.15 s, async safe 0.24 s);
//  - with --keys: the first again (:memory:) on a keyed ledger (CURVE, as
//    the coordinator) against a plain one, their runs taking turns.
// Each figure is the median of --runs runs.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "client/local_cluster.h"
#include "common/log.h"
#include "common/security.h"
#include "common/transport.h"
#include "jobs/bank/bank.h"

namespace fanout::bench {
namespace {

// Sends `count` atomic transfers keeping `window` in flight; transfers/s.
// With `keys`, a CURVE client of the ledger.
Result<double> Hammer(const std::string& endpoint, uint32_t count, uint32_t window, int run,
                      const Keys* keys = nullptr) {
  zmq::context_t ctx(1);
  zmq::socket_t dealer = MakeSocket(ctx, zmq::socket_type::dealer);
  if (Status s = PrepareClient(dealer, keys, Role::kLedger); !s) return s.error();
  if (Status s = Connect(dealer, endpoint); !s) return s.error();
  const std::string book = fmt::format("bench-{}", run);
  auto request = [&](uint64_t id) {
    pb::Envelope env = NewEnvelope();
    pb::LedgerRequest* r = env.mutable_ledger_request();
    r->set_request_id(id);
    r->set_book(book);
    return env;
  };
  auto wait_reply = [&](Message& msg) {
    std::vector<zmq::pollitem_t> items = {{dealer.handle(), 0, ZMQ_POLLIN, 0}};
    while (!RecvMessage(dealer, msg)) {
      if (zmq::poll(items, milliseconds(10'000)) == 0) return false;
    }
    return true;
  };
  Message msg;
  pb::Envelope reset = request(0);
  reset.mutable_ledger_request()->mutable_reset()->set_accounts(100);
  reset.mutable_ledger_request()->mutable_reset()->set_initial(1'000'000'000);
  Send(dealer, reset);
  if (!wait_reply(msg)) return Unavailable("the ledger did not answer");

  const TimePoint start = Now();
  uint32_t sent = 0, answered = 0, failed = 0;
  std::vector<zmq::message_t> batch;
  while (answered < count) {
    batch.clear();
    while (sent < count && sent - answered < window) {
      pb::Envelope env = request(++sent);
      pb::TransferFunds* t = env.mutable_ledger_request()->mutable_transfer();
      t->set_transfer_id(std::to_string(sent));
      t->set_from(fmt::format("bank_{}", sent % 100 + 1));
      t->set_to(fmt::format("bank_{}", (sent + 37) % 100 + 1));
      t->set_amount(1);
      batch.push_back(Encode(env));
    }
    if (!batch.empty() && !SendBatch(dealer, {}, batch)) return Internal("send failed");
    if (!wait_reply(msg)) return Unavailable("the ledger stopped answering");
    for (const zmq::message_t& frame : Payloads(msg, false)) {
      Result<pb::Envelope> env = Decode(frame);
      if (!env || !env->ledger_reply().ok()) ++failed;
      ++answered;
    }
  }
  if (failed > 0) return Internal("{} transfers failed", failed);
  return count / (ToMillis(Now() - start) / 1000);
}

int Main(int argc, char** argv) {
  CLI::App app("bench/ledger: transfers per second, alone and through bank jobs (JSON)");
  int runs = 5;
  uint32_t transfers = 100'000, window = 64, job_transfers = 20'000;
  app.add_option("--runs", runs, "repetitions; figures are medians")->capture_default_str();
  app.add_option("--transfers", transfers, "transfers per run straight into the ledger")
      ->capture_default_str();
  app.add_option("--window", window, "requests in flight")->capture_default_str();
  app.add_option("--job-transfers", job_transfers, "transfers in the bank job")
      ->capture_default_str();
  bool keyed = false;
  app.add_flag("--keys", keyed,
               "also the ledger alone with CURVE (keys made here) against without");
  CLI11_PARSE(app, argc, argv);
  (void)InitLogging("bench", "warn");
  auto fail = [](const std::string& what) {
    fmt::print(stderr, "bench: {}\n", what);
    return 1;
  };

  nlohmann::json direct = nlohmann::json::object();
  auto dir = client::TempDir::Make("bench-ledger");
  if (!dir) return fail(dir.error().message);
  for (const std::string& db : {std::string(":memory:"), *dir / "ledger.db"}) {
    auto ledger = client::StartLedger(FanoutNextToUs(), {"--db", db});
    if (!ledger) return fail(ledger.error().message);
    std::vector<double> rates;
    for (int i = 0; i < runs; ++i) {
      Result<double> rate = Hammer((*ledger)->address(), transfers, window, i);
      if (!rate) return fail(rate.error().message);
      rates.push_back(*rate);
    }
    const std::string name = db == ":memory:" ? "memory" : "durable";
    direct[name] = {{"transfers_per_s_median", std::round(Median(rates))},
                    {"transfers_per_s_runs", rates}};
    fmt::print(stderr, "ledger alone, {}: {:.0f} transfers/s\n", name, Median(rates));
  }

  nlohmann::json curve = nullptr;
  if (keyed) {
    if (Status s = KeyGen(*dir / "keys"); !s) return fail(s.error().message);
    auto keys = Keys::Load(*dir / "keys", Role::kCoordinator);
    if (!keys) return fail(keys.error().message);
    auto plain = client::StartLedger(FanoutNextToUs(), {"--db", ":memory:"});
    auto secure =
        client::StartLedger(FanoutNextToUs(), {"--db", ":memory:", "--keys", *dir / "keys"});
    if (!plain || !secure) return fail(!plain ? plain.error().message : secure.error().message);
    std::vector<double> plain_rates, curve_rates;
    for (int i = 0; i < runs; ++i) {
      Result<double> p = Hammer((*plain)->address(), transfers, window, i);
      Result<double> c = Hammer((*secure)->address(), transfers, window, i, keys->get());
      if (!p || !c) return fail(!p ? p.error().message : c.error().message);
      plain_rates.push_back(*p);
      curve_rates.push_back(*c);
      fmt::print(stderr, "ledger alone, memory, run {}: plain {:.0f}, CURVE {:.0f} transfers/s\n",
                 i + 1, *p, *c);
    }
    curve = {
        {"plain_transfers_per_s_median", std::round(Median(plain_rates))},
        {"curve_transfers_per_s_median", std::round(Median(curve_rates))},
        {"curve_over_plain", std::round(Median(curve_rates) / Median(plain_rates) * 1000) / 1000}};
  }

  auto ledger = client::StartLedger(FanoutNextToUs(), {"--db", *dir / "jobs.db"});
  if (!ledger) return fail(ledger.error().message);
  client::ClusterOptions options;
  options.binary = FanoutNextToUs();
  options.workers = 2;
  options.coordinator_flags = {"--ledger", (*ledger)->address()};
  auto cluster = client::LocalCluster::Start(options);
  if (!cluster) return fail(cluster.error().message);
  client::JobClient client({.endpoint = (*cluster)->clients_endpoint()});
  auto bank = [](pb::TransferMode mode, pb::Model model, uint32_t count, uint32_t verify_ms,
                 uint32_t gap_us, uint32_t concurrency, uint32_t workers) {
    pb::JobSpec spec;
    spec.set_model(model);
    spec.set_count(count);
    spec.set_concurrency(concurrency);
    spec.set_max_workers(workers);
    pb::BankJob* b = spec.mutable_bank();
    b->set_accounts(5);
    b->set_initial(count >= 1000 ? 1'000'000'000 : 1000);
    b->set_amount_max(100);
    b->set_seed(1);
    b->set_mode(mode);
    b->set_verify_ms(verify_ms);
    b->set_gap_us(gap_us);
    return spec;
  };

  std::vector<double> job_rates;
  for (int i = 0; i < runs; ++i) {
    auto r = RunOk(client, bank(pb::ATOMIC, pb::ASYNC, job_transfers, 0, 0, 64, 1));
    if (!r) return fail(r.error().message);
    job_rates.push_back(job_transfers / (r->wall_ms / 1000));
  }
  fmt::print(stderr, "bank job, 1 async worker: {:.0f} transfers/s\n", Median(job_rates));

  // The article's job; unsafe may end with a wrong sum, which is its point.
  nlohmann::json article = nlohmann::json::object();
  for (pb::TransferMode mode : {pb::UNSAFE, pb::LOCKED, pb::ATOMIC}) {
    for (pb::Model model : {pb::SYNC, pb::THREADS, pb::ASYNC}) {
      std::vector<double> walls, lost;
      for (int i = 0; i < runs; ++i) {
        client::JobObserver quiet;
        auto r = client.Run(bank(mode, model, 20, 100, 100, 0, 1), quiet);
        if (!r) return fail(r.error().message);
        walls.push_back(r->wall_ms);
        lost.push_back(
            static_cast<double>(r->done.ledger().expected_sum() - r->done.ledger().sum()));
      }
      article[fmt::format("{}_{}", jobs::bank::ModeName(mode), ModelName(model))] = {
          {"wall_ms_median", std::round(Median(walls))}, {"lost_per_run", lost}};
    }
  }

  nlohmann::json out = {{"benchmark", "ledger"},
                        {"machine", {{"cores", Cores()}, {"host", HostName()}}},
                        {"runs", runs},
                        {"direct", {{"transfers", transfers}, {"in_flight", window}}},
                        {"bank_job_one_async_worker",
                         {{"transfers", job_transfers},
                          {"concurrency", 64},
                          {"transfers_per_s_median", std::round(Median(job_rates))}}},
                        {"article_20_transfers_one_worker", article}};
  out["direct"].update(direct);
  if (keyed) out["direct_memory_curve"] = curve;
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace
}  // namespace fanout::bench

int main(int argc, char** argv) { return fanout::bench::Main(argc, argv); }
