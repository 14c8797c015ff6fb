// The task handlers: what a worker does with each kind of task.
//
// A handler fills in the outcome of a task (ok, value or error); the executor
// that called it adds the ids, timestamps and lane. A failing task is a
// failed result, never a crashed worker: handlers turn every error into
// `result.error`.
#pragma once

#include "common/codec.h"
#include "worker/coro.h"
#include "worker/curl_multi.h"
#include "worker/event_loop.h"
#include "worker/ledger_client.h"

namespace fanout::worker {

// What an async handler may wait on; owned by the async runtime's thread.
struct AsyncContext {
  EventLoop& loop;
  CurlMulti& http;
  AsyncLedgers& ledgers;
};

// Runs the task on the calling thread (the sync and threads models).
void RunBlocking(const pb::Task& task, pb::Result& result);

// The same work as a coroutine on the async loop: waits suspend instead of
// blocking the thread, CPU work runs on the loop thread as in asyncio.
co::Task<void> RunAsync(const pb::Task& task, pb::Result& result, AsyncContext& ctx);

}  // namespace fanout::worker
