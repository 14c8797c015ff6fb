// JobKind: everything fanout knows about one kind of job, in one place.
//
// A kind (math, web, bank, exec) is one folder under jobs/ that implements
// this interface, plus its messages in proto/fanout.proto (a spec in JobSpec's
// `kind` oneof, a task in Task's `payload` oneof). The command line, the
// client, the coordinator and the worker reach kinds only through the
// registry (jobs/registry.h), so a new kind touches nothing outside its folder
// but the registry's list and the proto. The steps are in DEVELOPERS.md.
//
// Who calls what:
//  - `fanout submit KIND`: AddSubmitFlags, then SubmitFlags::Fill.
//  - the coordinator: Validate when a job arrives, FillTask for each dispatch,
//    TaskDeadline, and the ledger calls around a job (OpenRequest, ...).
//  - a worker: NewRunner once; the Runner runs tasks under every model.
//  - clients: StartLine / DoneLine for the live log, JsonValue and
//    AddJsonFields for --json, Verify for the comparison tables.
//
// Thread-safety: a JobKind is immutable once the registry has built it, and
// any thread may call it. A Runner's RunBlocking is called from many pool
// threads at once; its RunAsync only on the worker's event-loop thread.
#pragma once

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "common/coro.h"
#include "common/event_loop.h"
#include "common/result.h"
#include "common/security.h"

namespace fanout::jobs {

// The parsed flags of `fanout submit KIND`: the kind's part of a job.
class SubmitFlags {
 public:
  virtual ~SubmitFlags() = default;
  // Sets the spec's kind message and its task count. `spec` already has
  // the flags every kind shares (model, concurrency, ...).
  virtual Status Fill(pb::JobSpec& spec) const = 0;
};

// What the coordinator tells kinds when it builds a task.
struct CoordinatorEnv {
  std::string ledger;  // the ledger's endpoint as workers reach it (--ledger); empty: none
};

class Functions;  // jobs/call/functions.h

// What a worker lets its tasks do, fixed when it starts (`fanout worker` flags).
struct WorkerEnv {
  std::string worker_id;
  bool allow_exec = false;                     // --allow-exec: run commands at all
  std::vector<std::string> exec_allowed;       // --exec-allow: only these programs (empty: any)
  std::shared_ptr<const Keys> keys = nullptr;  // --keys: CURVE to the ledger (bank tasks)
  std::shared_ptr<const Functions> functions = nullptr;  // the named functions it serves
};

// What a coroutine may wait on: the worker's event loop, and one object of
// each type a kind keeps on the loop thread (a libcurl multi handle, ledger
// sockets), made on first use and destroyed with the runtime. Loop thread only.
class AsyncEnv {
 public:
  explicit AsyncEnv(EventLoop& loop) : loop_(loop) {}
  AsyncEnv(const AsyncEnv&) = delete;
  AsyncEnv& operator=(const AsyncEnv&) = delete;
  ~AsyncEnv() {
    while (!order_.empty()) {  // newest first, as members would be
      objects_.erase(order_.back());
      order_.pop_back();
    }
  }

  EventLoop& loop() { return loop_; }

  // The loop's T, constructed as T(EventLoop&) the first time it is asked for.
  template <typename T>
  T& Get() {
    auto [it, fresh] = objects_.try_emplace(std::type_index(typeid(T)));
    if (fresh) {
      it->second = std::make_shared<T>(loop_);
      order_.push_back(it->first);
    }
    return *static_cast<T*>(it->second.get());
  }

 private:
  EventLoop& loop_;
  std::unordered_map<std::type_index, std::shared_ptr<void>> objects_;
  std::vector<std::type_index> order_;
};

// Runs one kind's tasks on one worker. A handler fills in the outcome (ok,
// value or error); the executor adds the ids, timestamps and lane. A failing
// task is a failed result, never a crashed worker: every error ends up in
// `result.error`. `stop` is requested when the task should end now (the
// worker stops, the job was cancelled): long waits end early.
class Runner {
 public:
  virtual ~Runner() = default;
  // Whether this worker takes the kind's tasks (its Hello says so).
  virtual bool enabled() const { return true; }
  // On the calling thread (the sync and threads models).
  virtual void RunBlocking(const pb::Task& task, pb::Result& result, std::stop_token stop) = 0;
  // The same as a coroutine on the event loop (the async model): waits
  // suspend instead of blocking; CPU work holds the loop, as in asyncio.
  virtual co::Task<void> RunAsync(const pb::Task& task, pb::Result& result, AsyncEnv& env,
                                  std::stop_token stop) = 0;
};

// Whether a job's results are right, when the kind can tell.
struct Verdict {
  bool right = true;
  std::string text;      // "all 20 values right", "sum 4950: 50 lost"
  bool warning = false;  // wrong, but as the lesson expects (unsafe transfers)
};

class JobKind {
 public:
  virtual ~JobKind() = default;

  // ---- identity
  // The name on the command line, in logs and in Hello.serves: "math".
  virtual std::string_view name() const = 0;
  virtual pb::JobSpec::KindCase spec_case() const = 0;
  virtual pb::Task::PayloadCase payload_case() const = 0;
  // One line for `fanout submit --help`.
  virtual std::string_view summary() const = 0;

  // ---- the command line
  // Adds the kind's own flags to `fanout submit <name>`.
  virtual std::unique_ptr<SubmitFlags> AddSubmitFlags(CLI::App& cmd) const = 0;

  // ---- the coordinator
  // OK, or one line saying what is wrong with the kind's part of `spec`
  // (JobSpec's shared fields are checked by ValidateSpec in registry.h).
  virtual Status Validate(const pb::JobSpec& spec) const = 0;
  // Sets the payload of task `index` (1-based); `task` has its ids already.
  virtual void FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv& env,
                        pb::Task* task) const = 0;
  // How long one attempt may run before the coordinator runs it elsewhere,
  // when the job did not say (nullopt: the coordinator's default; zero: never).
  virtual std::optional<Duration> TaskDeadline(const pb::JobSpec&) const { return std::nullopt; }
  // The name a worker must serve (its Hello's `functions`) to be sent this
  // job's tasks, besides the kind; empty: any worker running the kind.
  virtual std::string_view RoutingName(const pb::JobSpec&) const { return ""; }
  // Said to a client whose job waits because no connected worker serves the
  // kind: how to start one that does (", start one with --allow-exec").
  virtual std::string_view WorkerHint() const { return ""; }
  // Jobs that need the ledger before their first task and after their last
  // (the bank opens a fresh book, then reads it back). The coordinator sends
  // these, again until answered, and holds the job's tasks meanwhile.
  virtual bool needs_ledger() const { return false; }
  virtual pb::LedgerRequest OpenRequest(const pb::JobSpec&) const { return {}; }
  virtual pb::LedgerRequest CloseRequest(const pb::JobSpec&) const { return {}; }
  // Puts what the closing reply says into the job's summary.
  virtual void Closed(const pb::JobSpec&, const pb::LedgerReply&, pb::JobDone&) const {}

  // ---- the worker
  // Made once per worker process; an error stops the worker at start
  // ("--exec-allow convx: not found").
  virtual Result<std::unique_ptr<Runner>> NewRunner(const WorkerEnv& env) const = 0;

  // ---- what clients show
  // The live log: "Doing math, starting_number=3..." / "Done with math, ...".
  virtual std::string StartLine(const pb::JobSpec& spec, uint32_t index) const = 0;
  virtual std::string DoneLine(const pb::JobSpec& spec, uint32_t index,
                               const pb::Result& result) const = 0;
  // The task's number in the results table: its index ("03"), unless the
  // kind numbers tasks otherwise (web: the page number, as its log does).
  virtual std::string TaskLabel(const pb::JobSpec& spec, uint32_t index) const;
  // A result's value in --json: the number or the text, unless the kind knows better.
  virtual nlohmann::json JsonValue(const pb::JobSpec& spec, const pb::Result& result) const;
  // Fields of its own in each --json result (exec: "exit_code").
  virtual void AddJsonFields(const pb::Result&, nlohmann::json&) const {}
  // Whether a finished job is right, for kinds that can tell from the spec
  // (math knows its values, bank its sum); nullopt otherwise. `results` are
  // by index - 1, null where a task has no result.
  virtual std::optional<Verdict> Verify(const pb::JobSpec&,
                                        const std::vector<const pb::Result*>& results,
                                        const pb::JobDone& done) const {
    (void)results;
    (void)done;
    return std::nullopt;
  }
};

// The number or the text of a result, as most kinds show it in --json.
nlohmann::json PlainValue(const pb::Result& result);

// Sleeps for `d` on a pool thread, or less if `stop` is requested; false then.
inline bool SleepUnlessStopped(Duration d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, d, [] { return false; });
}

}  // namespace fanout::jobs
