// JobClient: submits jobs to a coordinator and follows them to the end.
//
// Used by `fanout submit`, `fanout demo`, the benchmarks and the tests. One
// DEALER socket, reused for every job this client runs, one job at a time.
// Not thread-safe.
//
//   JobClient client({.endpoint = "tcp://127.0.0.1:5556"});
//   Result<JobReport> report = client.Run(spec, observer);
//   if (!report && report.error().code == Error::Code::kUnavailable) exit(3);
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/codec.h"
#include "common/result.h"
#include "common/security.h"

namespace fanout::client {

// What the client knows about one task of its job.
struct TaskRecord {
  uint32_t index = 0;
  bool done = false;
  uint32_t dispatches = 0;
  std::string worker;  // where it was last dispatched, then who delivered it
  pb::Result result;   // the accepted result, once done
};

struct JobReport {
  pb::JobSpec spec;
  std::string job_id;
  bool interrupted = false;  // this client was told to stop (Ctrl-C) and cancelled or left it
  int64_t accepted_us = 0;   // coordinator's clock
  pb::JobDone done;
  double wall_ms = 0;              // submit to JobDone, on the client's clock
  uint32_t finished = 0;           // tasks with a result so far
  uint32_t duplicate_results = 0;  // DONE events for tasks already done (should stay 0)
  std::vector<TaskRecord> tasks;   // by index - 1
};

// Hooks for live output. Called on the thread that called Run().
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  virtual void OnAccepted(const JobReport&) {}
  virtual void OnDispatched(const JobReport&, const TaskRecord&, uint32_t /*attempt*/) {}
  // False: OnDispatched is never wanted, so the coordinator need not send
  // a task's start (half of what a job's client hears).
  virtual bool WantsDispatched() const { return true; }
  virtual void OnDone(const JobReport&, const TaskRecord&) {}
  // About every 100 ms while the job runs: for a progress line.
  virtual void OnTick(const JobReport&) {}
  // The job waits for something (no worker can run it, the ledger has not
  // answered): `reason` says what; empty when it goes on.
  virtual void OnWaiting(const JobReport&, const std::string& /*reason*/) {}
};

// A report for the job `accepted` (the answer to a Submit or a Watch)
// describes, before any of its events.
JobReport StartReport(const pb::JobSpec& spec, const pb::Accepted& accepted);

// Takes a job's events into `report` as a client following the job does
// (a task done twice counts once, and as a duplicate unless replayed),
// telling `observer` of each.
void ApplyEvents(JobReport& report, const pb::TaskEvents& events, JobObserver& observer);

// The math job: `count` tasks, task i computing from start i (1, 2, ...)
// over `iterations`, under `model`; other fields left at their defaults.
pb::JobSpec MathJob(pb::Model model, uint32_t count, uint64_t iterations);

// Who this process is (host, pid, user), for the jobs it submits and cancels.
pb::Origin ThisProcess();

struct ClientOptions {
  std::string endpoint = "tcp://127.0.0.1:5556";
  Duration connect_timeout = milliseconds(3000);  // for the first answer
  // A running job's coordinator silent this long is lost; before that the
  // client keeps asking to follow the job (a restarted coordinator resumes it).
  Duration silence_timeout = milliseconds(30000);
  Duration heartbeat_interval = milliseconds(500);
  // With keys (--keys), the coordinator is reached with CURVE.
  std::shared_ptr<const Keys> keys = nullptr;
};

class JobClient {
 public:
  explicit JobClient(ClientOptions options);

  // Runs one job to its end. Errors: kUnavailable when the coordinator does
  // not answer or goes silent (or cannot take jobs now), kInvalidArgument
  // when it rejects the job or is not a coordinator's clients endpoint.
  // When `cancel_fd` becomes readable (a signalfd), the job is cancelled and
  // the report says so (interrupted).
  Result<JobReport> Run(const pb::JobSpec& spec, JobObserver& observer, int cancel_fd = -1);

  // Submits a job that runs without this client (detached): its id.
  Result<std::string> Detach(const pb::JobSpec& spec);

  // Follows a job from anywhere: its results so far (replayed), then the rest
  // as they come, to its end. When `cancel_fd` becomes readable it stops
  // following (the job goes on) and returns what it has, interrupted.
  // kNotFound for a job the coordinator does not know. With `until_now`, it
  // returns at once for a job still running (ended() false in the report's
  // done is not set): for `fanout result`.
  Result<JobReport> Watch(const std::string& job_id, JobObserver& observer, int cancel_fd = -1,
                          bool until_now = false);

  // Ends a job (anyone's), saying why; the summary of what it had done.
  Result<pb::JobDone> Cancel(const std::string& job_id, const std::string& reason);

  // Asks the coordinator who is connected / which jobs run (and ended).
  Result<pb::StatusReply> Status();
  Result<pb::JobsReply> Jobs(bool all);

 private:
  // Waits for the next envelope up to `timeout`; nullopt on timeout.
  std::optional<pb::Envelope> Receive(Duration timeout, int cancel_fd, bool* cancelled);
  void Send(const pb::Envelope& env);
  // Sends `request` and waits up to the connect timeout for an answer
  // `wanted` accepts; the coordinator's errors become Errors.
  Result<pb::Envelope> Ask(const pb::Envelope& request,
                           const std::function<bool(const pb::Envelope&)>& wanted);
  // Why the coordinator gave no answer in `waited`: refused, wrong keys, or
  // silent.
  Error NoAnswer(Duration waited) const;
  // The first answer to a Submit or a Watch: Accepted, or why not.
  Result<pb::Accepted> Answer(const std::string& asked, int cancel_fd, bool* cancelled);
  // Takes in events and the end of the job in `report` until it ends.
  Result<JobReport> Follow(JobReport report, JobObserver& observer, int cancel_fd, bool owner,
                           TimePoint started);

  ClientOptions options_;
  zmq::context_t ctx_{1};
  zmq::socket_t socket_;
  fanout::Status setup_;  // what was wrong with the keys, if anything
  HandshakeWatch handshakes_;
  std::deque<pb::Envelope> received_;  // the rest of a batch already read
};

}  // namespace fanout::client
