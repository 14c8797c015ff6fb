#include "worker/handlers.h"

#include <fmt/format.h>

#include "worker/bank.h"
#include "worker/math.h"
#include "worker/web.h"

namespace fanout::worker {

void RunBlocking(const pb::Task& task, pb::Result& result) {
  switch (task.payload_case()) {
    case pb::Task::kMath:
      result.set_number(DoMath(task.math().start(), task.math().iterations()));
      result.set_ok(true);
      return;
    case pb::Task::kFetchPage:
      return FetchBlocking(task.fetch_page(), result);
    case pb::Task::kTransfer:
      return TransferBlocking(task, result);
    case pb::Task::PAYLOAD_NOT_SET:
      break;
  }
  result.set_ok(false);
  result.set_error("task has no payload this worker knows (is the coordinator newer?)");
}

co::Task<void> RunAsync(const pb::Task& task, pb::Result& result, AsyncContext& ctx) {
  if (task.payload_case() == pb::Task::kFetchPage) {
    co_await FetchAsync(task.fetch_page(), result, ctx);
    co_return;
  }
  if (task.payload_case() == pb::Task::kTransfer) {
    co_await TransferAsync(task, result, ctx);
    co_return;
  }
  // Math never waits: it holds the loop for its whole run, as in asyncio.
  RunBlocking(task, result);
}

}  // namespace fanout::worker
