// Executors: where a worker runs tasks, one per job and model.
//
//  - ThreadPool runs a blocking handler on N threads (the `threads` model;
//    `sync` is a pool of one).
//  - AsyncRuntime runs coroutine handlers on one event-loop thread (the
//    `async` model), shared by all async jobs of the worker.
//
// Handlers get a stop token, requested when the executor goes away, so long
// waits (a command, a page, a sleep) end instead of holding it up.
//
// Handlers get a stop token: it is requested when the executor goes away,
// so long waits (a command, a page, a sleep) end instead of holding it.
//
// Submit() is called from the worker's I/O thread only. Each executor thread
// owns a ResultSink, a PUSH socket to the I/O thread's inproc endpoint, and
// sends every result there as [job_id][ResultTag][envelope], so the I/O
// thread can forward the envelope frame without decoding it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "common/codec.h"
#include "common/coro.h"
#include "common/event_loop.h"
#include "common/mutex.h"
#include "jobs/kind.h"

namespace fanout::worker {

using BlockingHandler = std::function<void(const pb::Task&, pb::Result&, std::stop_token)>;
using AsyncHandler =
    std::function<co::Task<void>(const pb::Task&, pb::Result&, jobs::AsyncEnv&, std::stop_token)>;

// What the I/O thread learns of a result without decoding it (a frame of
// its own, copied as bytes: both ends are this process).
struct ResultTag {
  uint32_t index = 0;
  uint32_t attempt = 0;
  uint8_t ok = 0;
  uint8_t kind = 0;    // the kind's index in jobs::Kinds()
  uint8_t model = 0;   // pb::Model
  int64_t run_us = 0;  // from its start to its end here
};

// One executor thread's way back to the I/O thread. Not thread-safe.
class ResultSink {
 public:
  ResultSink(zmq::context_t& ctx, const std::string& endpoint, std::string worker_id);
  // Stamps the ids, times and lane, then sends. Blocks if the I/O thread is
  // far behind (the inproc queue is full): back-pressure, never a drop.
  void Send(const pb::Task& task, pb::Result& result, int64_t started_us, uint32_t lane);

 private:
  zmq::socket_t socket_;
  std::string worker_id_;
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual void Submit(pb::Task task) = 0;
  // Asks the job's running tasks to stop now (their stop token); its tasks
  // not started yet report "stopped" without running. Every task submitted
  // still reports a result. Called from the worker's I/O thread.
  virtual void Stop(const std::string& job_id, const std::string& reason) = 0;
};

// Each job's stop source, while the executor has tasks of it. Not
// thread-safe: the executors keep it under their mutex.
class JobStops {
 public:
  // A task of `job` is submitted / has reported.
  void Add(const std::string& job);
  void Done(const std::string& job);
  // The token for a task of `job` (which must have been added).
  std::stop_token Token(const std::string& job) const;
  // Why the job was stopped; empty when it was not.
  const std::string& Stopped(const std::string& job) const;
  void Stop(const std::string& job, const std::string& reason);

 private:
  struct Entry {
    std::stop_source source;
    uint32_t tasks = 0;
    std::string reason;
  };
  std::unordered_map<std::string, Entry> jobs_;
};

struct ExecutorEnv {
  zmq::context_t& ctx;
  std::string results_endpoint;
  std::string worker_id;
};

class ThreadPool final : public Executor {
 public:
  // Starts `threads` threads, or as many as the process can (threads() says,
  // shortfall() why not more).
  ThreadPool(const ExecutorEnv& env, size_t threads, BlockingHandler handler);
  // Asks running tasks to stop and waits for them; queued ones are dropped
  // (the coordinator re-runs whatever a worker did not report).
  ~ThreadPool() override;

  void Submit(pb::Task task) override;
  void Stop(const std::string& job_id, const std::string& reason) override;
  size_t threads() const { return threads_.size(); }
  size_t asked() const { return asked_; }  // threads() unless it fell short
  const std::string& shortfall() const { return shortfall_; }

 private:
  void Run(uint32_t lane, ResultSink& sink);
  // Wakes one idle thread unless one is already on its way.
  void WakeOneLocked() REQUIRES(mu_);

  ExecutorEnv env_;
  BlockingHandler handler_;
  Mutex mu_;
  CondVar ready_;
  std::deque<pb::Task> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  // Wake-ups are chained, as in Go's and Tokio's schedulers: a burst of tasks
  // wakes one thread, which wakes the next only if work is left when it
  // takes its task. Tiny tasks are then run by the threads already awake
  // instead of paying a context switch each, and long ones still spread
  // over every thread within a few microseconds.
  size_t idle_ GUARDED_BY(mu_) = 0;
  bool waking_ GUARDED_BY(mu_) = false;
  JobStops stops_ GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
  size_t asked_;
  std::string shortfall_;  // why fewer threads started than asked
};

class AsyncRuntime final : public Executor {
 public:
  AsyncRuntime(const ExecutorEnv& env, AsyncHandler handler);
  ~AsyncRuntime() override;

  void Submit(pb::Task task) override;
  void Stop(const std::string& job_id, const std::string& reason) override;

 private:
  void Run();
  void StartQueued();  // loop thread
  co::Task<void> RunOne(pb::Task task);
  uint32_t TakeLane(const std::string& job);
  void FreeLane(const std::string& job, uint32_t lane);

  ExecutorEnv env_;
  AsyncHandler handler_;
  EventLoop loop_;
  Mutex mu_;
  std::deque<pb::Task> inbox_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  // Loop-thread state.
  std::unique_ptr<ResultSink> sink_;
  std::unique_ptr<jobs::AsyncEnv> async_env_;
  JobStops stops_ GUARDED_BY(mu_);
  std::unordered_map<std::string, std::vector<bool>> lanes_;  // coroutine slots per job
  size_t running_ = 0;
  std::thread thread_;
};

}  // namespace fanout::worker
