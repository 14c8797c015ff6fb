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

#include "common/codec.h"
#include "worker/coro.h"

namespace fanout::worker {

struct AsyncContext;

void TransferBlocking(const pb::Task& task, pb::Result& result);
co::Task<void> TransferAsync(const pb::Task& task, pb::Result& result, AsyncContext& ctx);

}  // namespace fanout::worker
