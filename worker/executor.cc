#include "worker/executor.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/transport.h"
#include "jobs/registry.h"

namespace fanout::worker {

ResultSink::ResultSink(zmq::context_t& ctx, const std::string& endpoint, std::string worker_id)
    : socket_(ctx, zmq::socket_type::push), worker_id_(std::move(worker_id)) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

void ResultSink::Send(const pb::Task& task, pb::Result& result, int64_t started_us, uint32_t lane) {
  result.set_job_id(task.job_id());
  result.set_index(task.index());
  result.set_attempt(task.attempt());
  result.set_started_us(started_us);
  const int64_t finished_us = UnixMicros();
  result.set_finished_us(finished_us);
  result.set_thread(lane);
  result.set_worker_id(worker_id_);
  pb::Envelope env = NewEnvelope();
  env.mutable_result()->Swap(&result);
  const ResultTag tag{.index = task.index(),
                      .attempt = task.attempt(),
                      .ok = env.result().ok(),
                      .kind = static_cast<uint8_t>(jobs::Kinds().IndexOf(task)),
                      .model = static_cast<uint8_t>(task.model()),
                      .run_us = finished_us - started_us};
  zmq::message_t frame = Encode(env);
  if (!SendParts(socket_, {zmq::buffer(task.job_id()), zmq::buffer(&tag, sizeof tag)}, frame)) {
    // Only at shutdown (context terminated): the coordinator will re-run it.
    spdlog::debug("task {}/{}: result not handed over", task.job_id(), task.index());
  }
}

// ---- JobStops ----------------------------------------------------------------

void JobStops::Add(const std::string& job) { ++jobs_[job].tasks; }

void JobStops::Done(const std::string& job) {
  auto it = jobs_.find(job);
  if (it != jobs_.end() && --it->second.tasks == 0) jobs_.erase(it);
}

std::stop_token JobStops::Token(const std::string& job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? std::stop_token() : it->second.source.get_token();
}

const std::string& JobStops::Stopped(const std::string& job) const {
  static const std::string none;
  auto it = jobs_.find(job);
  return it == jobs_.end() ? none : it->second.reason;
}

void JobStops::Stop(const std::string& job, const std::string& reason) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  it->second.reason = reason.empty() ? "stopped" : reason;
  it->second.source.request_stop();  // runs stop callbacks here (they only signal)
}

// A task of a stopped job, not run.
static void Skipped(pb::Result& result, const std::string& why) {
  result.set_ok(false);
  result.set_error(fmt::format("not run: {}", why));
}

// ---- ThreadPool --------------------------------------------------------------

ThreadPool::ThreadPool(const ExecutorEnv& env, size_t threads, BlockingHandler handler)
    : env_(env), handler_(std::move(handler)), asked_(threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    // Each thread's socket is made here, on the I/O thread (the thread's
    // start is the fence ZeroMQ asks for when a socket changes threads), so
    // that running out of sockets, descriptors or threads makes a smaller
    // pool instead of an exception on a thread of its own.
    try {
      auto sink = std::make_unique<ResultSink>(env_.ctx, env_.results_endpoint, env_.worker_id);
      threads_.emplace_back(
          [this, i, sink = std::move(sink)] { Run(static_cast<uint32_t>(i), *sink); });
    } catch (const std::exception& e) {  // zmq::error_t (EMFILE), std::system_error (EAGAIN)
      shortfall_ = e.what();
      break;
    }
  }
}

ThreadPool::~ThreadPool() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    for (const pb::Task& task : queue_) stops_.Stop(task.job_id(), "the worker is stopping");
  }
  ready_.NotifyAll();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::Submit(pb::Task task) {
  MutexLock lock(mu_);
  stops_.Add(task.job_id());
  queue_.push_back(std::move(task));
  WakeOneLocked();
}

void ThreadPool::Stop(const std::string& job_id, const std::string& reason) {
  MutexLock lock(mu_);
  stops_.Stop(job_id, reason);
}

void ThreadPool::WakeOneLocked() {
  if (idle_ == 0 || waking_ || queue_.empty()) return;
  waking_ = true;
  ready_.NotifyOne();
}

void ThreadPool::Run(uint32_t lane, ResultSink& sink) {
  while (true) {
    pb::Task task;
    std::stop_token stop;
    std::string stopped;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) {
        ++idle_;
        ready_.Wait(mu_);
        --idle_;
        waking_ = false;  // whoever was woken is up (or this was spurious)
      }
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      stop = stops_.Token(task.job_id());
      stopped = stops_.Stopped(task.job_id());
      WakeOneLocked();
    }
    pb::Result result;
    const int64_t started = UnixMicros();
    if (!stopped.empty()) {
      Skipped(result, stopped);
    } else {
      try {
        handler_(task, result, stop);
      } catch (const std::exception& e) {
        result.set_ok(false);
        result.set_error(fmt::format("handler failed: {}", e.what()));
      }
    }
    sink.Send(task, result, started, lane);
    {
      MutexLock lock(mu_);
      stops_.Done(task.job_id());
    }
  }
}

// ---- AsyncRuntime ------------------------------------------------------------

AsyncRuntime::AsyncRuntime(const ExecutorEnv& env, AsyncHandler handler)
    : env_(env), handler_(std::move(handler)) {
  loop_.OnWake([this] { StartQueued(); });
  thread_ = std::thread([this] { Run(); });
}

AsyncRuntime::~AsyncRuntime() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  loop_.Wake();
  thread_.join();
}

void AsyncRuntime::Submit(pb::Task task) {
  {
    MutexLock lock(mu_);
    stops_.Add(task.job_id());
    inbox_.push_back(std::move(task));
  }
  loop_.Wake();
}

void AsyncRuntime::Stop(const std::string& job_id, const std::string& reason) {
  MutexLock lock(mu_);
  stops_.Stop(job_id, reason);
}

void AsyncRuntime::Run() {
  sink_ = std::make_unique<ResultSink>(env_.ctx, env_.results_endpoint, env_.worker_id);
  async_env_ = std::make_unique<jobs::AsyncEnv>(loop_);
  while (true) {
    {
      MutexLock lock(mu_);
      if (stopping_) break;
    }
    loop_.RunOnce(std::chrono::seconds(1));
  }
  // Running tasks are asked to stop and get a moment to do it (a command's
  // group is killed within its grace); whatever is still suspended then is
  // abandoned with the loop, like tasks queued in a pool: the coordinator
  // re-runs what a worker did not report.
  {
    MutexLock lock(mu_);
    std::vector<std::string> jobs;
    for (const auto& [job, lanes] : lanes_) jobs.push_back(job);
    for (const std::string& job : jobs) stops_.Stop(job, "the worker is stopping");
  }
  const TimePoint give_up = Now() + std::chrono::seconds(1);
  while (running_ > 0 && Now() < give_up) loop_.RunOnce(milliseconds(50));
  if (running_ > 0) spdlog::debug("async runtime stopping with {} tasks running", running_);
  async_env_.reset();
  sink_.reset();
}

void AsyncRuntime::StartQueued() {
  std::deque<pb::Task> batch;
  {
    MutexLock lock(mu_);
    batch.swap(inbox_);
  }
  for (pb::Task& task : batch) co::Spawn(RunOne(std::move(task)));
}

co::Task<void> AsyncRuntime::RunOne(pb::Task task) {
  ++running_;
  const uint32_t lane = TakeLane(task.job_id());
  std::stop_token stop;
  std::string stopped;
  {
    MutexLock lock(mu_);
    stop = stops_.Token(task.job_id());
    stopped = stops_.Stopped(task.job_id());
  }
  pb::Result result;
  const int64_t started = UnixMicros();
  if (!stopped.empty()) {
    Skipped(result, stopped);
  } else {
    try {
      co_await handler_(task, result, *async_env_, stop);
    } catch (const std::exception& e) {
      result.set_ok(false);
      result.set_error(fmt::format("handler failed: {}", e.what()));
    }
  }
  sink_->Send(task, result, started, lane);
  FreeLane(task.job_id(), lane);
  {
    MutexLock lock(mu_);
    stops_.Done(task.job_id());
  }
  --running_;
}

uint32_t AsyncRuntime::TakeLane(const std::string& job) {
  std::vector<bool>& used = lanes_[job];
  for (size_t i = 0; i < used.size(); ++i) {
    if (!used[i]) {
      used[i] = true;
      return static_cast<uint32_t>(i);
    }
  }
  used.push_back(true);
  return static_cast<uint32_t>(used.size() - 1);
}

void AsyncRuntime::FreeLane(const std::string& job, uint32_t lane) {
  auto it = lanes_.find(job);
  it->second[lane] = false;
  if (std::find(it->second.begin(), it->second.end(), true) == it->second.end()) lanes_.erase(it);
}

}  // namespace fanout::worker
