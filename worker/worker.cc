#include "worker/worker.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "common/backoff.h"
#include "common/liveness.h"
#include "common/log.h"
#include "common/transport.h"
#include "common/version.h"
#include "jobs/registry.h"
#include "worker/executor.h"
#include "worker/metrics.h"

namespace fanout::worker {
namespace {

constexpr int kBatch = 512;

// A job with tasks in flight here, and the pool it borrowed for them (none
// for async jobs: they share the runtime). Pools of one size are
// interchangeable, so a job returns its pool when its last task is reported
// and the next job of that size reuses it.
struct JobRun {
  std::unique_ptr<ThreadPool> pool;
  uint32_t inflight = 0;
};

struct IdlePool {
  std::unique_ptr<ThreadPool> pool;
  TimePoint since;
};

// The worker's Runner of each kind, in the registry's order.
using Runners = std::vector<std::unique_ptr<jobs::Runner>>;

Result<Runners> MakeRunners(const WorkerOptions& options, const std::string& id) {
  const jobs::WorkerEnv env{.worker_id = id,
                            .allow_exec = options.allow_exec,
                            .exec_allowed = options.exec_allowed,
                            .keys = options.keys,
                            .functions = options.functions};
  Runners runners;
  for (const auto& kind : jobs::Kinds().all()) {
    Result<std::unique_ptr<jobs::Runner>> runner = kind->NewRunner(env);
    if (!runner) return runner.error();
    runners.push_back(std::move(*runner));
  }
  return runners;
}

std::string WorkerId(const WorkerOptions& options) {
  return options.id.empty() ? fmt::format("{}-{}", HostName(), getpid()) : options.id;
}

class Worker {
 public:
  // `metrics`: where its counts go, when it serves --http.
  Worker(const WorkerOptions& options, int signal_fd, Runners runners, WorkerMetrics* metrics);
  int Run();

 private:
  void Connect(TimePoint now);
  void Disconnect(TimePoint now);
  // Says why the coordinator refuses this worker, once per reason.
  void OnHandshakes();
  // Handles one envelope; false when the rest of its message is moot (the
  // worker reconnected, or must stop).
  bool OnCoordinator(const pb::Envelope& env, TimePoint now);
  void StopJob(const pb::StopTasks& stop);
  // A line per job at info: when its first task arrives here, and once it
  // has been idle here for a while (how many ran, how many failed).
  void NoteTask(const pb::Task& task, TimePoint now);
  void NoteResult(const std::string& job, bool ok, TimePoint now);
  void LogIdleJobs(TimePoint now);
  void OnTask(pb::Task task, TimePoint now);
  void ForwardResults(TimePoint now);
  void FlushUnsent();
  void Tick(TimePoint now);
  void OnSignal(TimePoint now);
  // Where the task runs; null when no thread could be started for it.
  Executor* ExecutorFor(const pb::Task& task);
  // A pool of `threads` threads for `job`, or as many as could start (a
  // warning says why not all); null when none could.
  std::unique_ptr<ThreadPool> NewPool(const std::string& job, size_t threads);
  // The runner for a task's kind; nullptr for a payload this build does not know.
  jobs::Runner* RunnerFor(const pb::Task& task);
  // `log`: with a warning of its own.
  void SendResult(const pb::Task& task, const std::string& error, bool log = true);
  bool Drained() const { return draining_ && running_ == 0 && unsent_.empty(); }
  void SendEnvelope(const pb::Envelope& env);

  WorkerOptions options_;
  int signal_fd_;
  std::string id_;
  Runners runners_;
  zmq::context_t ctx_ = ManySocketsContext();  // a socket per pool thread
  zmq::socket_t results_;
  std::string results_endpoint_;
  std::optional<zmq::socket_t> dealer_;
  std::optional<HandshakeWatch> handshakes_;  // of dealer_
  std::string refusal_;                       // said once per reason
  Liveness coordinator_;
  Backoff backoff_;
  TimePoint reconnect_at_{};
  bool draining_ = false;
  int signals_ = 0;

  std::unordered_map<std::string, JobRun> jobs_;
  // With --slots, every sync and threads job runs on this one pool of that
  // many threads (the coordinator's credit keeps each job within its own
  // bound); without, each job borrows a pool of its size.
  std::unique_ptr<ThreadPool> shared_pool_;
  struct JobLog {
    uint32_t tasks = 0, ok = 0, failed = 0, running = 0;
    TimePoint last{};
  };
  std::unordered_map<std::string, JobLog> job_log_;
  bool heard_since_connect_ = false;  // "connected" is said once per connection
  std::string fatal_;                 // why the worker must stop (a wrong endpoint)
  std::vector<IdlePool> idle_pools_;
  LogLimiter pool_warnings_{3};  // pools that started short
  std::unique_ptr<AsyncRuntime> async_;
  // Running, or result not yet sent: each attempt (a task past its
  // deadline may be sent here again), as the coordinator counts claims.
  using Held = std::tuple<std::string, uint32_t, uint32_t>;  // job, index, attempt
  struct HeldHash {
    size_t operator()(const Held& h) const {
      return std::hash<std::string>()(std::get<0>(h)) * 31 + std::get<1>(h) * 7 + std::get<2>(h);
    }
  };
  std::unordered_set<Held, HeldHash> held_;
  std::deque<std::pair<Held, zmq::message_t>> unsent_;
  size_t running_ = 0;
  // The coordinator's last heartbeat stamp and when it arrived (our clock).
  std::pair<int64_t, int64_t> last_stamp_{};
  WorkerMetrics* metrics_;  // null without --http
};

Worker::Worker(const WorkerOptions& options, int signal_fd, Runners runners, WorkerMetrics* metrics)
    : options_(options),
      signal_fd_(signal_fd),
      id_(WorkerId(options)),
      runners_(std::move(runners)),
      results_(ctx_, zmq::socket_type::pull),
      coordinator_(options.heartbeat_interval, options.liveness, Now()),
      backoff_(options.reconnect_initial, options.reconnect_max, std::random_device()()),
      metrics_(metrics) {
  if (options_.threads == 0) options_.threads = Cores() + 4;
  // A per-process name keeps endpoints apart when tests run workers in one process.
  results_endpoint_ = fmt::format("inproc://results-{}", static_cast<const void*>(this));
  results_.set(zmq::sockopt::linger, 0);
  results_.bind(results_endpoint_);
}

void Worker::Connect(TimePoint now) {
  dealer_.emplace(MakeSocket(ctx_, zmq::socket_type::dealer));
  if (Status s = PrepareClient(*dealer_, options_.keys.get(), Role::kCoordinator); !s) {
    fatal_ = s.error().message;
    return;
  }
  handshakes_.emplace(HandshakeWatch::Client(
      ctx_, *dealer_, fmt::format("the coordinator at {}", options_.coordinator), "worker",
      options_.keys != nullptr));
  // Results and the Hello queue up while the TCP connection forms.
  if (Status s = fanout::Connect(*dealer_, options_.coordinator); !s) {
    spdlog::error("{}", s.error().message);
  }
  pb::Envelope env = NewEnvelope();
  pb::Hello* hello = env.mutable_hello();
  hello->set_worker_id(id_);
  hello->set_host(HostName());
  hello->set_pid(getpid());
  hello->set_concurrency(options_.threads);
  hello->set_slots(options_.slots);
  hello->set_cores(Cores());
  hello->set_version(std::string(kVersion));
  for (size_t i = 0; i < runners_.size(); ++i) {
    if (runners_[i]->enabled()) hello->add_serves(std::string(jobs::Kinds().all()[i]->name()));
  }
  if (options_.functions) {
    for (std::string& name : options_.functions->names()) hello->add_functions(std::move(name));
  }
  for (const auto& [job, index, attempt] : held_) {
    pb::TaskRef* ref = hello->add_holding();
    ref->set_job_id(job);
    ref->set_index(index);
    ref->set_attempt(attempt);
  }
  SendEnvelope(env);
  if (draining_) {
    pb::Envelope drain = NewEnvelope();
    drain.mutable_drain()->set_reason("draining");
    SendEnvelope(drain);
  }
  coordinator_ = Liveness(options_.heartbeat_interval, options_.liveness, now);
  heard_since_connect_ = false;
  if (metrics_ != nullptr) ++metrics_->counts().connects;
  FlushUnsent();
}

void Worker::Disconnect(TimePoint now) {
  const std::string why = handshakes_ ? handshakes_->Explain(coordinator_.Silence(now)) : "";
  handshakes_.reset();
  dealer_.reset();
  const Duration wait = backoff_.Next();
  reconnect_at_ = now + wait;
  if (!why.empty() && why == refusal_) {
    spdlog::debug("{}; trying again in {:.0f} ms", why, ToMillis(wait));
  } else if (!why.empty()) {
    spdlog::error("{}; trying again in {:.0f} ms", why, ToMillis(wait));
  } else {
    spdlog::warn("coordinator at {} silent for {:.1f} s; reconnecting in {:.0f} ms",
                 options_.coordinator,
                 std::chrono::duration<double>(coordinator_.Silence(now)).count(), ToMillis(wait));
  }
  refusal_ = why;
}

void Worker::OnHandshakes() {
  handshakes_->Poll();
  const std::string& refused = handshakes_->refused();
  if (refused.empty() || refused == refusal_) return;
  spdlog::error("{}", refused);  // once per reason; retried until it is admitted
  refusal_ = refused;
}

void Worker::SendEnvelope(const pb::Envelope& env) {
  if (dealer_ && !Send(*dealer_, env)) {
    spdlog::debug("'{}' not queued to the coordinator", BodyName(env));
  }
}

bool Worker::OnCoordinator(const pb::Envelope& env, TimePoint now) {
  coordinator_.Heard(now);
  backoff_.Reset();
  if (!heard_since_connect_) {
    heard_since_connect_ = true;
    spdlog::info("connected to the coordinator at {} (worker id {})", options_.coordinator, id_);
  }
  switch (env.body_case()) {
    case pb::Envelope::kTask:
      OnTask(env.task(), now);
      return true;
    case pb::Envelope::kStop:
      StopJob(env.stop());
      return true;
    case pb::Envelope::kHeartbeat:
      if (env.heartbeat().sent_us() > 0) {
        last_stamp_ = {env.heartbeat().sent_us(), UnixMicros()};
      }
      return true;
    case pb::Envelope::kError:
      if (env.error().code() == pb::Error::UNKNOWN_PEER) {
        // Said once: the rest of this message was for the old connection.
        spdlog::info("coordinator does not know this worker (restarted?): saying Hello again");
        Connect(now);
        return false;
      }
      if (env.error().code() == pb::Error::WRONG_SERVICE) {
        fatal_ = fmt::format("{} is not a coordinator's workers endpoint: {}", options_.coordinator,
                             env.error().message());
        return false;
      }
      spdlog::warn("coordinator says: {}", env.error().message());
      return true;
    default:
      spdlog::warn("unexpected '{}' from the coordinator, ignored", BodyName(env));
      return true;
  }
}

void Worker::StopJob(const pb::StopTasks& stop) {
  const std::string& job = stop.job_id();
  auto log = job_log_.find(job);
  spdlog::info("job {}: stopping its {} tasks here ({})", job,
               log == job_log_.end() ? 0 : log->second.running, stop.reason());
  if (auto run = jobs_.find(job); run != jobs_.end() && run->second.pool) {
    run->second.pool->Stop(job, stop.reason());
  }
  if (shared_pool_) shared_pool_->Stop(job, stop.reason());
  if (async_) async_->Stop(job, stop.reason());
}

void Worker::NoteTask(const pb::Task& task, TimePoint now) {
  auto [it, fresh] = job_log_.try_emplace(task.job_id());
  JobLog& log = it->second;
  if (fresh) {
    const jobs::JobKind* kind = jobs::Kinds().For(task);
    spdlog::info("job {}: first task here ({} under {})", task.job_id(),
                 kind != nullptr ? kind->name() : "unknown", ModelName(task.model()));
  }
  ++log.tasks;
  ++log.running;
  log.last = now;
}

void Worker::NoteResult(const std::string& job, bool ok, TimePoint now) {
  auto it = job_log_.find(job);
  if (it == job_log_.end()) return;
  ok ? ++it->second.ok : ++it->second.failed;
  if (it->second.running > 0) --it->second.running;
  it->second.last = now;
}

void Worker::LogIdleJobs(TimePoint now) {
  constexpr Duration kIdle = std::chrono::seconds(2);
  for (auto it = job_log_.begin(); it != job_log_.end();) {
    const JobLog& log = it->second;
    if (log.running > 0 || now - log.last < kIdle) {
      ++it;
      continue;
    }
    spdlog::info("job {}: {} task{} ran here ({} ok, {} failed); none now", it->first, log.tasks,
                 log.tasks == 1 ? "" : "s", log.ok, log.failed);
    it = job_log_.erase(it);
  }
}

jobs::Runner* Worker::RunnerFor(const pb::Task& task) {
  const size_t kind = jobs::Kinds().IndexOf(task);
  return kind < runners_.size() ? runners_[kind].get() : nullptr;
}

Executor* Worker::ExecutorFor(const pb::Task& task) {
  if (task.model() == pb::ASYNC) {
    if (!async_) {
      async_ = std::make_unique<AsyncRuntime>(
          ExecutorEnv{ctx_, results_endpoint_, id_},
          [this](const pb::Task& t, pb::Result& r, jobs::AsyncEnv& env, std::stop_token stop) {
            return RunnerFor(t)->RunAsync(t, r, env, std::move(stop));
          });
    }
    return async_.get();
  }
  if (options_.slots > 0) {
    if (!shared_pool_) shared_pool_ = NewPool(task.job_id(), options_.slots);
    return shared_pool_.get();
  }
  JobRun& run = jobs_[task.job_id()];
  if (!run.pool) {
    const size_t threads = task.model() == pb::SYNC ? 1 : std::max<uint32_t>(1, task.concurrency());
    auto idle = std::find_if(idle_pools_.begin(), idle_pools_.end(),
                             [&](const IdlePool& p) { return p.pool->asked() == threads; });
    if (idle != idle_pools_.end()) {
      run.pool = std::move(idle->pool);
      idle_pools_.erase(idle);
    } else {
      run.pool = NewPool(task.job_id(), threads);
    }
  }
  return run.pool.get();
}

std::unique_ptr<ThreadPool> Worker::NewPool(const std::string& job, size_t threads) {
  auto pool =
      std::make_unique<ThreadPool>(ExecutorEnv{ctx_, results_endpoint_, id_}, threads,
                                   [this](const pb::Task& t, pb::Result& r, std::stop_token stop) {
                                     RunnerFor(t)->RunBlocking(t, r, std::move(stop));
                                   });
  if (pool->threads() < threads) {
    // Idle pools hold threads and sockets: given back for the next pool
    // (ZeroMQ closes sockets in the background, so not this one's).
    idle_pools_.clear();
    if (std::optional<uint64_t> skipped = pool_warnings_.Allow(Now())) {
      spdlog::warn(
          "job {}: {} threads asked, {} started ({}): raise `ulimit -n` or ask for less "
          "--concurrency{}",
          job, threads, pool->threads(), pool->shortfall(), SkippedNote(*skipped));
    }
  } else {
    spdlog::debug("job {}: new pool of {} threads", job, threads);
  }
  if (pool->threads() == 0) return nullptr;
  return pool;
}

void Worker::OnTask(pb::Task task, TimePoint now) {
  if (draining_) {
    pb::Envelope env = NewEnvelope();
    pb::TaskReturned* back = env.mutable_returned();
    back->set_job_id(task.job_id());
    back->set_index(task.index());
    back->set_attempt(task.attempt());
    back->set_reason("worker is draining");
    SendEnvelope(env);
    return;
  }
  if (task.model() != pb::SYNC && task.model() != pb::THREADS && task.model() != pb::ASYNC) {
    return SendResult(task, fmt::format("unknown model {}", static_cast<int>(task.model())));
  }
  if (RunnerFor(task) == nullptr) {
    return SendResult(task, "task has no payload this worker knows (is the coordinator newer?)");
  }
  spdlog::debug("task {}/{}: attempt {} under {}", task.job_id(), task.index(), task.attempt(),
                ModelName(task.model()));
  Executor* executor = ExecutorFor(task);
  if (executor == nullptr) {
    if (auto run = jobs_.find(task.job_id()); run != jobs_.end() && run->second.inflight == 0) {
      jobs_.erase(run);
    }
    return SendResult(task, "no thread could be started for it (see the worker's log)",
                      /*log=*/false);
  }
  NoteTask(task, now);
  ++jobs_[task.job_id()].inflight;
  ++running_;
  held_.emplace(task.job_id(), task.index(), task.attempt());
  executor->Submit(std::move(task));
}

// A failed result for a task this worker cannot even start.
void Worker::SendResult(const pb::Task& task, const std::string& error, bool log) {
  if (log) spdlog::warn("task {}/{}: {}", task.job_id(), task.index(), error);
  pb::Envelope env = NewEnvelope();
  pb::Result* result = env.mutable_result();
  result->set_job_id(task.job_id());
  result->set_index(task.index());
  result->set_attempt(task.attempt());
  result->set_worker_id(id_);
  result->set_error(error);
  SendEnvelope(env);
}

void Worker::ForwardResults(TimePoint now) {
  Message msg;
  for (size_t i = 0; i < kMaxBatch && RecvMessage(results_, msg); ++i) {
    // Our own executor threads send [job][ResultTag][envelope].
    ResultTag tag;
    if (msg.size() != 3 || msg.frames[1].size() != sizeof tag) continue;
    std::memcpy(&tag, msg.frames[1].data(), sizeof tag);
    Held key{PeerName(msg.frames[0]), tag.index, tag.attempt};
    NoteResult(std::get<0>(key), tag.ok != 0, now);
    if (metrics_ != nullptr) {
      metrics_->counts().tasks.Count(tag.kind, std::max<size_t>(tag.model, 1) - 1, tag.ok != 0,
                                     static_cast<double>(tag.run_us) / 1e6);
    }
    auto run = jobs_.find(std::get<0>(key));
    if (run != jobs_.end() && --run->second.inflight == 0) {
      if (run->second.pool) idle_pools_.push_back({std::move(run->second.pool), now});
      jobs_.erase(run);
    }
    --running_;
    unsent_.push_back({std::move(key), std::move(msg.frames[2])});
  }
  FlushUnsent();
}

// Sends results in batches, oldest first, while the connection's queue takes
// them; what is left waits for the next call or the next reconnect.
void Worker::FlushUnsent() {
  std::vector<zmq::message_t> frames;
  while (dealer_ && !unsent_.empty()) {
    const size_t n = std::min(kMaxBatch, unsent_.size());
    frames.clear();
    for (size_t i = 0; i < n; ++i) frames.emplace_back().copy(unsent_[i].second);
    if (!SendBatch(*dealer_, {}, frames)) return;
    for (size_t i = 0; i < n; ++i) {
      held_.erase(unsent_.front().first);
      unsent_.pop_front();
    }
  }
}

void Worker::Tick(TimePoint now) {
  if (!dealer_) {
    if (now >= reconnect_at_) {
      spdlog::info("connecting to the coordinator at {}", options_.coordinator);
      Connect(now);
    }
  } else if (coordinator_.Expired(now)) {
    Disconnect(now);
  } else if (coordinator_.HeartbeatDue(now)) {
    pb::Envelope env = NewEnvelope();
    pb::Heartbeat* hb = env.mutable_heartbeat();
    if (last_stamp_.first > 0) {
      hb->set_echo_us(last_stamp_.first);
      hb->set_echo_heard_us(last_stamp_.second);
      last_stamp_ = {};
    }
    hb->set_sent_us(UnixMicros());
    SendEnvelope(env);
    coordinator_.Sent(now);
  }
  std::erase_if(idle_pools_,
                [&](const IdlePool& p) { return now - p.since > options_.executor_idle; });
  LogIdleJobs(now);
  if (metrics_ != nullptr && metrics_->Due(now)) {
    metrics_->Publish(now,
                      {.running = running_,
                       .unsent = unsent_.size(),
                       .connected = dealer_ && heard_since_connect_ && !coordinator_.Expired(now),
                       .draining = draining_});
  }
}

void Worker::OnSignal(TimePoint now) {
  if (++signals_ > 1) return;
  draining_ = true;
  spdlog::info("draining: {} tasks running, no new ones will be taken", running_);
  pb::Envelope env = NewEnvelope();
  env.mutable_drain()->set_reason("signal");
  SendEnvelope(env);
  Tick(now);
}

int Worker::Run() {
  std::string serves;
  for (size_t i = 0; i < runners_.size(); ++i) {
    if (!runners_[i]->enabled()) continue;
    serves += fmt::format("{}{}", serves.empty() ? "" : ", ", jobs::Kinds().all()[i]->name());
  }
  if (options_.functions && !options_.functions->empty()) {
    serves += fmt::format(" ({})", fmt::join(options_.functions->names(), ", "));
  }
  spdlog::info("worker {} starting: coordinator {}, {} threads by default; runs {} tasks", id_,
               options_.coordinator, options_.threads, serves);
  Connect(Now());
  while (true) {
    std::vector<zmq::pollitem_t> items = {
        {results_.handle(), 0, ZMQ_POLLIN, 0},
        {nullptr, signal_fd_, ZMQ_POLLIN, 0},
    };
    if (dealer_) {
      items.push_back({dealer_->handle(), 0, ZMQ_POLLIN, 0});
      items.push_back({handshakes_->monitor().handle(), 0, ZMQ_POLLIN, 0});
    }
    TimePoint now = Now();
    TimePoint next = dealer_ ? coordinator_.NextDeadline() : reconnect_at_;
    if (metrics_ != nullptr) next = std::min(next, metrics_->next());
    const auto wait = std::clamp(std::chrono::ceil<milliseconds>(next - now), milliseconds(0),
                                 std::chrono::duration_cast<milliseconds>(options_.executor_idle));
    zmq::poll(items, wait);
    now = Now();
    if (items[1].revents & ZMQ_POLLIN) {
      signalfd_siginfo info;
      while (read(signal_fd_, &info, sizeof info) == sizeof info) {
        OnSignal(now);
      }
      if (signals_ > 1) {
        spdlog::warn("second signal: stopping now with {} tasks unfinished", running_);
        return 1;
      }
    }
    if (dealer_ && items.size() > 3 && (items[3].revents & ZMQ_POLLIN)) OnHandshakes();
    if (dealer_ && (items.size() > 2 && items[2].revents & ZMQ_POLLIN)) {
      Message msg;
      for (int i = 0; i < kBatch && dealer_ && fatal_.empty() && RecvMessage(*dealer_, msg); ++i) {
        for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
          Result<pb::Envelope> env = Decode(frame);
          if (!env) {
            static LogLimiter dropped(10);
            if (std::optional<uint64_t> skipped = dropped.Allow(now)) {
              spdlog::warn("dropped a frame from the coordinator: {}{}", env.error().message,
                           SkippedNote(*skipped));
            }
            continue;
          }
          if (!OnCoordinator(*env, now)) break;
        }
      }
    }
    if (!fatal_.empty()) {
      spdlog::error("{}", fatal_);
      return 1;
    }
    ForwardResults(now);
    Tick(now);
    if (Drained()) {
      spdlog::info("drained: every task finished and reported; exiting");
      if (dealer_) {
        pb::Envelope bye = NewEnvelope();
        bye.mutable_drain()->set_reason("drained");
        bye.mutable_drain()->set_leaving(true);
        SendEnvelope(bye);
        dealer_->set(zmq::sockopt::linger, 2000);  // let the last results out
      }
      return 0;
    }
    if (draining_ && running_ == 0 && !dealer_) {
      spdlog::warn("drained, but {} results could not be sent: the coordinator will re-run them",
                   unsent_.size());
      return 0;
    }
  }
}

}  // namespace

int RunWorker(const WorkerOptions& options, int signal_fd) {
  // The runners first, while this process has no threads of its own yet
  // (the exec kind forks its reaper here).
  Result<Runners> runners = MakeRunners(options, WorkerId(options));
  if (!runners) {
    spdlog::error("{}", runners.error().message);
    return 1;
  }
  std::unique_ptr<WorkerMetrics> metrics =
      options.http.empty() ? nullptr : std::make_unique<WorkerMetrics>();
  Result<std::unique_ptr<http::Server>> http =
      http::ServeMetricsIfAsked(options.http, options.keys.get(), options.insecure,
                                metrics ? metrics->registry() : nullptr, "worker");
  if (!http) {
    spdlog::error("{}", http.error().message);
    return 2;
  }
  if (*http == nullptr) metrics.reset();  // no one to read them
  Worker worker(options, signal_fd, std::move(*runners), metrics.get());
  return worker.Run();
}

}  // namespace fanout::worker
