// The simulated peers of the coordinator: workers and clients that speak
// fanout's protocol as the real ones do (Hello with what they hold,
// heartbeats, credit, reconnects; Submit, Watch after silence, Cancel), and
// that die, pause, vanish and misbehave when the world tells them to.
// Single-threaded, on the world's event queue.
#pragma once

#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/world.h"

namespace fanout::sim {

using TaskKey = std::pair<std::string, uint32_t>;  // job, index

class SimWorker {
 public:
  // `slots`: the most tasks it runs at once, of all jobs (0: no cap).
  SimWorker(World& world, std::string id, bool exec, uint32_t slots);

  void Start();               // a fresh process: new pid, nothing held
  void Crash();               // dies at once; what it had in flight is lost
  void Pause(Duration d);     // stopped (SIGSTOP): hears and says nothing, then goes on
  void Drain();               // SIGTERM: no new tasks, finishes, reports, exits
  void SendGarbageResults();  // results for unknown jobs, old attempts, index 0
  void OnMessage(const pb::Envelope& env);

  bool alive() const { return alive_; }
  bool draining() const { return draining_; }
  bool exec() const { return exec_; }
  bool paused() const { return world_.now() < paused_until_; }
  const std::string& id() const { return id_; }

 private:
  struct Running {
    uint32_t attempt;
    uint64_t run;  // this run's number, for its timer
    bool bank;     // moves money on the ledger before it reports
  };
  void Connect();
  void Lost();  // the coordinator is silent: reconnect after a back-off
  void Beat(uint64_t life);
  void OnTask(const pb::Task& task);
  // StopTasks: the job ended; what of it runs here stops and reports so.
  void OnStop(const std::string& job);
  void Finish(TaskKey key, uint64_t run, uint64_t life);
  void Send(const pb::Envelope& env);
  void SendResult(const TaskKey& key, pb::Envelope env);
  void Flush();
  // A draining worker with nothing left to run or report exits.
  void ExitIfDrained();
  // Runs `fn` now, or when a pause ends.
  void WhenAwake(std::function<void()> fn);

  World& world_;
  std::string id_;
  bool exec_;
  uint32_t slots_;
  int64_t pid_ = 0;
  uint64_t life_ = 0;  // events of an earlier life are ignored
  bool alive_ = false;
  bool draining_ = false;
  TimePoint paused_until_{};
  Conn* conn_ = nullptr;
  TimePoint heard_{};
  Duration backoff_ = milliseconds(250);
  uint64_t next_run_ = 0;
  std::map<std::pair<TaskKey, uint32_t>, Running> running_;  // by (task, attempt)
  std::deque<std::pair<TaskKey, pb::Envelope>> unsent_;
};

class SimClient {
 public:
  // A client that submits `spec`.
  SimClient(World& world, uint64_t number, pb::JobSpec spec);
  // A client that follows an existing job (Watch), as `fanout watch` would,
  // or (`cancels`) that ends it and waits to hear it end, as `fanout cancel`.
  SimClient(World& world, uint64_t number, std::string job_id, bool cancels);

  void Start();
  void Vanish();  // killed: never heard from again
  // Its own client's Ctrl-C, or `fanout cancel` from elsewhere.
  void Cancel();
  void OnMessage(const pb::Envelope& env);
  // The coordinator died: the connection is gone; ZeroMQ reconnects by
  // itself, and what is sent meanwhile waits for it.
  void ConnectionLost();

  bool waiting() const { return alive_ && !done_ && !gave_up_; }
  const std::string& job_id() const { return job_id_; }
  bool vanished() const { return !alive_; }

 private:
  void Reconnect();
  void Send(const pb::Envelope& env);
  void Beat();
  void OnEvents(const pb::TaskEvents& events);
  void OnDone(const pb::JobDone& done);

  World& world_;
  uint64_t number_;
  std::string name_;
  pb::JobSpec spec_;
  std::string job_id_;
  bool alive_ = true;
  bool done_ = false;
  bool gave_up_ = false;
  bool watching_ = false;  // a client of a job it did not submit
  bool cancels_ = false;   // `fanout cancel`: a process of its own
  Conn* conn_ = nullptr;
  std::deque<pb::Envelope> queued_;  // sent while not connected
  TimePoint heard_{};
  TimePoint submitted_{};
  TimePoint next_watch_{};
  uint32_t count_ = 0;
  std::vector<pb::Result> results_;  // by index - 1; index 0 when not heard
};

}  // namespace fanout::sim
