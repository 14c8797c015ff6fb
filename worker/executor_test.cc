#include "worker/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <zmq_addon.hpp>

#include "common/transport.h"
#include "jobs/registry.h"

namespace fanout::worker {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Collects results the way the worker's I/O thread does.
class ResultCollector {
 public:
  // `max_sockets`: ZeroMQ's cap on this context's sockets (0: its default).
  explicit ResultCollector(int max_sockets = 0) {
    if (max_sockets > 0) ctx_.set(zmq::ctxopt::max_sockets, max_sockets);
    pull_ = zmq::socket_t(ctx_, zmq::socket_type::pull);
    pull_.set(zmq::sockopt::linger, 0);
    pull_.bind(endpoint_);
  }
  ExecutorEnv env() { return ExecutorEnv{ctx_, endpoint_, "test-worker"}; }

  std::vector<pb::Result> Take(size_t n, Duration timeout = seconds(20)) {
    std::vector<pb::Result> out;
    pull_.set(zmq::sockopt::rcvtimeo, static_cast<int>(ToMillis(timeout)));
    while (out.size() < n) {
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(pull_, std::back_inserter(frames))) break;
      MarkReceived();
      EXPECT_EQ(frames.size(), 3u);
      ResultTag tag;
      EXPECT_EQ(frames[1].size(), sizeof tag);
      std::memcpy(&tag, frames[1].data(), sizeof tag);
      Result<pb::Envelope> env = Decode(frames[2]);
      EXPECT_TRUE(env.ok());
      EXPECT_EQ(env->result().job_id(), frames[0].to_string());
      EXPECT_EQ(env->result().index(), tag.index);
      EXPECT_EQ(env->result().ok(), tag.ok != 0);
      EXPECT_EQ(tag.run_us, env->result().finished_us() - env->result().started_us());
      out.push_back(env->result());
    }
    return out;
  }

 private:
  zmq::context_t ctx_;
  std::string endpoint_ = "inproc://executor-test";
  zmq::socket_t pull_;
};

pb::Task MakeTask(uint32_t index) {
  pb::Task task;
  task.set_job_id("job");
  task.set_index(index);
  task.set_attempt(1);
  task.mutable_math()->set_start(index);
  task.mutable_math()->set_iterations(1000);
  return task;
}

// Counts how many handlers run at once.
struct Overlap {
  std::atomic<int> now{0};
  std::atomic<int> max{0};
  void Enter() {
    const int n = ++now;
    int seen = max.load();
    while (n > seen && !max.compare_exchange_weak(seen, n)) {
    }
  }
  void Leave() { --now; }
};

TEST(ThreadPoolTest, APoolThatCannotStartEveryThreadRunsOnTheOnesItHas) {
  // Room for the collector's socket and 7 more: a pool of 20 makes 7 (a
  // worker at its open-file limit), says why, and runs every task.
  ResultCollector results(/*max_sockets=*/8);
  Overlap overlap;
  ThreadPool pool(results.env(), 20, [&](const pb::Task&, pb::Result& r, std::stop_token) {
    overlap.Enter();
    std::this_thread::sleep_for(milliseconds(20));
    overlap.Leave();
    r.set_ok(true);
  });
  EXPECT_EQ(pool.threads(), 7u);
  EXPECT_EQ(pool.asked(), 20u);
  EXPECT_NE(pool.shortfall(), "");
  for (uint32_t i = 1; i <= 40; ++i) pool.Submit(MakeTask(i));
  std::vector<pb::Result> out = results.Take(40);
  ASSERT_EQ(out.size(), 40u);
  std::set<uint32_t> indices;
  for (const pb::Result& r : out) indices.insert(r.index());
  EXPECT_EQ(indices.size(), 40u);
  EXPECT_LE(overlap.max.load(), 7);
}

TEST(ThreadPoolTest, RunsTasksInParallelOnDistinctLanes) {
  ResultCollector results;
  Overlap overlap;
  std::atomic<int> arrived{0};
  {
    // Each handler waits until all four are running: only a real pool of four
    // threads can finish.
    ThreadPool pool(results.env(), 4, [&](const pb::Task& task, pb::Result& r, std::stop_token) {
      overlap.Enter();
      ++arrived;
      const TimePoint give_up = Now() + seconds(10);
      while (arrived < 4 && Now() < give_up) std::this_thread::yield();
      overlap.Leave();
      r.set_ok(true);
      r.set_number(task.math().start());
    });
    for (uint32_t i = 1; i <= 4; ++i) pool.Submit(MakeTask(i));
    auto got = results.Take(4);
    ASSERT_EQ(got.size(), 4u);
    std::set<uint32_t> lanes, indexes;
    for (const auto& r : got) {
      EXPECT_TRUE(r.ok());
      EXPECT_EQ(r.worker_id(), "test-worker");
      EXPECT_LE(r.started_us(), r.finished_us());
      lanes.insert(r.thread());
      indexes.insert(r.index());
    }
    EXPECT_EQ(lanes.size(), 4u);
    EXPECT_EQ(indexes, (std::set<uint32_t>{1, 2, 3, 4}));
  }
  EXPECT_EQ(overlap.max, 4);
}

// Wake-ups are chained (one thread wakes the next): every thread must still
// be reached, for tasks that arrive in one burst and for ones that trickle in.
TEST(ThreadPoolTest, EveryThreadWakesForBurstsAndTrickles) {
  constexpr int kThreads = 16;
  ResultCollector results;
  std::atomic<int> arrived{0};
  ThreadPool pool(results.env(), kThreads, [&](const pb::Task&, pb::Result& r, std::stop_token) {
    ++arrived;
    const TimePoint give_up = Now() + seconds(10);
    while (arrived % kThreads != 0 && Now() < give_up) std::this_thread::yield();
    r.set_ok(arrived % kThreads == 0);
  });
  for (uint32_t i = 1; i <= kThreads; ++i) pool.Submit(MakeTask(i));
  for (const auto& r : results.Take(kThreads)) EXPECT_TRUE(r.ok()) << "burst: a thread slept";
  for (uint32_t i = 1; i <= kThreads; ++i) {
    pool.Submit(MakeTask(i));
    std::this_thread::sleep_for(milliseconds(1));
  }
  for (const auto& r : results.Take(kThreads)) EXPECT_TRUE(r.ok()) << "trickle: a thread slept";
}

TEST(ThreadPoolTest, PoolOfOneRunsOneTaskAtATime) {
  ResultCollector results;
  Overlap overlap;
  ThreadPool pool(results.env(), 1, [&](const pb::Task&, pb::Result& r, std::stop_token) {
    overlap.Enter();
    std::this_thread::sleep_for(milliseconds(2));
    overlap.Leave();
    r.set_ok(true);
  });
  for (uint32_t i = 1; i <= 10; ++i) pool.Submit(MakeTask(i));
  ASSERT_EQ(results.Take(10).size(), 10u);
  EXPECT_EQ(overlap.max, 1);
}

TEST(ThreadPoolTest, HandlerExceptionIsAFailedResultNotACrash) {
  ResultCollector results;
  ThreadPool pool(results.env(), 2, [](const pb::Task&, pb::Result&, std::stop_token) {
    throw std::runtime_error("bad page");
  });
  pool.Submit(MakeTask(1));
  auto got = results.Take(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].ok());
  EXPECT_EQ(got[0].error(), "handler failed: bad page");
}

// The math kind's runner, as a worker uses it.
std::unique_ptr<jobs::Runner> MathRunner() {
  return std::move(*jobs::Kinds().Find("math")->NewRunner({}));
}

TEST(ThreadPoolTest, RealMathHandlerComputesValues) {
  ResultCollector results;
  std::unique_ptr<jobs::Runner> math = MathRunner();
  ThreadPool pool(results.env(), 2, [&](const pb::Task& t, pb::Result& r, std::stop_token stop) {
    math->RunBlocking(t, r, stop);
  });
  for (uint32_t i = 1; i <= 3; ++i) pool.Submit(MakeTask(i));
  for (const auto& r : results.Take(3)) EXPECT_EQ(r.number(), r.index() + 1000.0);
}

TEST(AsyncRuntimeTest, CoroutinesOverlapTheirWaitsOnOneThread) {
  ResultCollector results;
  Overlap overlap;
  std::mutex mu;
  std::set<std::thread::id> threads;
  AsyncRuntime runtime(results.env(),
                       [&](const pb::Task& task, pb::Result& r, jobs::AsyncEnv& env,
                           std::stop_token) -> co::Task<void> {
                         {
                           std::lock_guard lock(mu);
                           threads.insert(std::this_thread::get_id());
                         }
                         overlap.Enter();
                         co_await env.loop().Sleep(milliseconds(200));
                         overlap.Leave();
                         r.set_ok(true);
                         r.set_number(task.index());
                       });
  for (uint32_t i = 1; i <= 20; ++i) runtime.Submit(MakeTask(i));
  auto got = results.Take(20);
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(threads.size(), 1u) << "all coroutines on the loop thread";
  EXPECT_EQ(overlap.max, 20) << "every wait overlapped";
  std::set<uint32_t> lanes;
  for (const auto& r : got) lanes.insert(r.thread());
  EXPECT_EQ(lanes.size(), 20u) << "each in-flight coroutine has its own lane";
}

TEST(AsyncRuntimeTest, CpuWorkGetsNoParallelism) {
  ResultCollector results;
  Overlap overlap;
  std::unique_ptr<jobs::Runner> math = MathRunner();
  AsyncRuntime runtime(results.env(),
                       [&](const pb::Task& task, pb::Result& r, jobs::AsyncEnv&,
                           std::stop_token stop) -> co::Task<void> {
                         overlap.Enter();
                         math->RunBlocking(task, r, stop);  // no await: holds the loop
                         overlap.Leave();
                         co_return;
                       });
  for (uint32_t i = 1; i <= 8; ++i) runtime.Submit(MakeTask(i));
  auto got = results.Take(8);
  ASSERT_EQ(got.size(), 8u);
  for (const auto& r : got) EXPECT_EQ(r.number(), r.index() + 1000.0);
  EXPECT_EQ(overlap.max, 1);
}

}  // namespace
}  // namespace fanout::worker
