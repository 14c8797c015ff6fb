// The Transfer task: move money between two accounts of a job's book on
// the ledger, in one of three modes (pb::TransferMode):
//   unsafe: read both balances and write them back, with a gap between read
//           and write; two transfers at once lose one's update.
//   locked: the same under the book's lease lock (the article's fix).
//   atomic: one Transfer request; the ledger applies it under its mutex,
//           once per transfer_id.
// Each starts with the simulated user check (verify_ms). The value is
// {"from", "to", "amount"} as JSON text.
#pragma once

#include <stop_token>

#include "common/codec.h"
#include "common/coro.h"
#include "common/event_loop.h"
#include "jobs/bank/ledger_client.h"

namespace fanout::jobs::bank {

// `keys`: the worker's (--keys), to reach the ledger with CURVE; null: plain.
void TransferBlocking(const pb::Task& task, pb::Result& result, std::stop_token stop = {},
                      const Keys* keys = nullptr);
co::Task<void> TransferAsync(const pb::Task& task, pb::Result& result, EventLoop& loop,
                             AsyncLedgers& ledgers, std::stop_token stop = {},
                             const Keys* keys = nullptr);

}  // namespace fanout::jobs::bank
