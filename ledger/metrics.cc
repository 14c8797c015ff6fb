#include "ledger/metrics.h"

namespace fanout::ledger {
namespace {

prometheus::Family<prometheus::Counter>& TransfersFamily(prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("fanout_ledger_transfers_total")
      .Help(
          "Transfer requests answered, by outcome: applied, already_applied (a re-sent "
          "transfer id: nothing changed) or refused")
      .Register(registry);
}

}  // namespace

LedgerMetrics::LedgerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      applied_(TransfersFamily(*registry_).Add({{"outcome", "applied"}})),
      again_(TransfersFamily(*registry_).Add({{"outcome", "already_applied"}})),
      refused_(TransfersFamily(*registry_).Add({{"outcome", "refused"}})),
      commit_seconds_(
          prometheus::BuildHistogram()
              .Name("fanout_ledger_commit_seconds")
              .Help("How long each group commit to disk took (fsync included)")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.0005, 0.001, 0.0025, 0.005,
                                                               0.01, 0.025, 0.05, 0.1, 0.5, 1})),
      commit_size_(prometheus::BuildHistogram()
                       .Name("fanout_ledger_group_commit_changes")
                       .Help("Changes (transfers, books opened and sealed) each group commit "
                             "made durable")
                       .Register(*registry_)
                       .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 5, 10, 20, 50, 100,
                                                                        200, 500, 1000, 5000})),
      waiting_(prometheus::BuildGauge()
                   .Name("fanout_ledger_replies_waiting")
                   .Help("Replies held until their change is on disk")
                   .Register(*registry_)
                   .Add({})) {}

void LedgerMetrics::Transfer(const pb::LedgerReply& reply) {
  if (!reply.ok()) {
    refused_.Increment();
  } else if (reply.already_applied()) {
    again_.Increment();
  } else {
    applied_.Increment();
  }
}

void LedgerMetrics::Committed(double seconds, size_t changes) {
  commit_seconds_.Observe(seconds);
  commit_size_.Observe(static_cast<double>(changes));
}

}  // namespace fanout::ledger
