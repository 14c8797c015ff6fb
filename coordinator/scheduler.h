// Scheduler: the coordinator's brain, with no sockets and no clock.
//
// It keeps the worker registry (who is connected, alive, draining, and what
// each one is running), the job table (what every task of every job is
// doing) and the clients waiting on jobs. The socket loop hands it each
// decoded message and the current time, then sends what it left in the
// outboxes. Everything here is single-threaded and deterministic, so tests
// drive it with made-up times and peers.
//
// The rules it enforces:
//  - Credit: a worker never holds more tasks of a job than its capacity for
//    the job's model (1 for sync, the concurrency for threads and async),
//    nor more tasks in all than its slots (`worker --slots`) when it has a cap.
//  - Sharing: free slots go to the runnable job of highest priority first,
//    and in turn among jobs of equal priority (round-robin).
//  - Liveness: workers are sent a heartbeat every interval and are dead after
//    `liveness` silent intervals; their in-flight tasks go back to the front of
//    the queue with attempt + 1, and fail after `max_attempts`.
//  - Deadlines: a task running past its job's task timeout is dispatched
//    again (the stuck worker keeps its claim; whichever result comes first
//    wins); it too counts as an attempt. Checked on every Tick.
//  - The first result of a task wins; any later one is dropped.
//  - Routing: a worker is sent only tasks of the kinds it serves (its Hello
//    lists them). A job that no connected worker can run waits, and its
//    client is told so (JobWaiting) and how to start a worker that can.
//  - Clients: a job has an owner (the client that submitted it, unless it is
//    detached) and followers (its owner and anyone watching it), who hear
//    its events. An owner silent for long has its jobs cancelled; a job
//    resumed from the journal waits for its owner to come back before it
//    runs again. Any client may list jobs, follow one or cancel one.
//  - A job that ends (done, failed or cancelled) has its tasks stopped on
//    the workers still running them, and their claims released.
//
// What a job's kind means (its payloads, its deadline, its calls to the
// ledger before the first task and after the last) comes from the kind
// (jobs/kind.h); the calls themselves go through LedgerCalls.
//
//   Scheduler s(options, [] { return NewJobId(); });
//   s.OnWorkerMessage(peer, envelope, now);
//   s.Dispatch(now);
//   for (auto& out : s.to_workers()) SendTo(router, out.peer, out.envelope);
#pragma once

#include <array>
#include <climits>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/codec.h"
#include "common/liveness.h"
#include "coordinator/journal.h"
#include "coordinator/ledger_calls.h"
#include "coordinator/telemetry.h"
#include "jobs/kind.h"

namespace fanout::coordinator {

// A ZeroMQ routing id: one connection of a worker or a client.
using PeerId = std::string;

struct SchedulerOptions {
  Duration heartbeat_interval = milliseconds(500);
  int liveness = 3;          // silent intervals before a worker is dead
  int client_liveness = 20;  // silent intervals before a client's jobs are cancelled
  uint32_t max_attempts = 3;
  // A task running this long (its worker alive but stuck) is dispatched
  // again; zero: never. Jobs may set their own.
  Duration task_timeout = std::chrono::seconds(300);
  uint32_t async_concurrency = 100;  // in-flight coroutines when a job does not say
  std::string ledger;                // the ledger's endpoint for bank jobs; empty: none
  // A job that no connected worker can run this long is said to wait.
  Duration waiting_notice = milliseconds(500);
  // Ended jobs listed by `fanout jobs --all` (the journal keeps their results).
  size_t remember_ended = 200;
  std::function<int64_t()> unix_micros = UnixMicros;
};

// A live timeline (the dashboard's) draws a running job's last this many
// tasks...
inline constexpr size_t kDrawnTasks = 5'000;
// ...of which the scheduler keeps at most the last this many between two
// takes (a publish, every 200 ms): in a ring allocated once, so a fast job
// being drawn costs the loop no allocation a task.
inline constexpr size_t kDrawnPerTake = 1'000;

// A finished task as a live timeline draws it: where and when it ran, and
// a short label (its value, or its error).
struct DrawnTask {
  uint32_t index = 0;
  bool ok = false;
  uint32_t thread = 0;
  int64_t started_us = 0;  // on the coordinator's clock
  int64_t finished_us = 0;
  std::string worker;
  std::string label;             // its text or error, at most kDrawnLabel bytes...
  std::optional<double> number;  // ...or its number (made text only when drawn)
};
inline constexpr size_t kDrawnLabel = 120;

// What a drawn job finished since the last take (Scheduler::TakeDrawn).
struct Drawn {
  std::string job_id;
  std::vector<DrawnTask> tasks;
  bool ended = false;  // its last tasks: it is drawn no more
};

// One message for the socket loop to send.
struct Outgoing {
  PeerId peer;
  pb::Envelope envelope;
};

struct SchedulerStats {
  uint64_t jobs_accepted = 0;
  uint64_t jobs_finished = 0;
  uint64_t dispatched = 0;
  uint64_t results = 0;
  uint64_t requeued = 0;
  uint64_t duplicates_dropped = 0;
  uint64_t returned = 0;
  uint64_t workers_lost = 0;
  uint64_t workers_left = 0;  // drained and gone
};

class Scheduler {
 public:
  // With a journal, jobs, results and job ends are recorded in it as they
  // happen (the caller commits it before sending), and clients that come
  // back (Watch) get their job's results replayed from it.
  Scheduler(SchedulerOptions options, std::function<std::string()> new_job_id,
            Journal* journal = nullptr);

  // Takes up a job a previous coordinator accepted and did not finish: its
  // finished tasks stay finished, the rest run. A detached job runs on at
  // once; another waits for its client to come back (Watch), which has the
  // usual client liveness to do so before the job is cancelled.
  void Restore(const JournaledJob& journaled, TimePoint now);
  // Lists an ended job (from the journal, after a restart) in `fanout jobs --all`.
  void RememberEnded(const pb::JobInfo& info);
  // Ends a job as `fanout cancel` does, for the dashboard; false when no
  // such job runs.
  bool CancelJob(const std::string& id, const std::string& why, TimePoint now);
  // The dashboard's live timeline of a running job: while `on`, each task
  // it finishes is kept as a DrawnTask (a few fields, no message copied),
  // the last kDrawnPerTake of those it had finished before seeded from the
  // journal. False when no such job runs.
  bool Draw(const std::string& job_id, bool on);
  // The tasks drawn jobs finished since the last call (jobs that ended
  // meanwhile included, marked ended).
  std::vector<Drawn> TakeDrawn();
  // `peer` no longer hears the job's events (the dashboard, when no page
  // looks at the job any more). Its owner stays its owner.
  void StopFollowing(const PeerId& peer, const std::string& job_id);
  // What `fanout status` and `fanout jobs [--all]` are told, now (also for
  // the HTTP side's snapshots).
  pb::StatusReply StatusNow(TimePoint now) const;
  pb::JobsReply JobsNow(bool all, TimePoint now) const;
  // What `fanout jobs` shows of a job that ended.
  static pb::JobInfo EndedInfo(const pb::JobSpec& spec, const pb::JobDone& done,
                               int64_t accepted_us, int64_t ended_us);
  // Graceful stop: new jobs are rejected with `reason`; running ones go on.
  // For `fanout status`: whether the sockets use CURVE, and how many peers
  // they refused (keys not authorized, plain peers, garbage).
  void SetSecurity(bool keyed, uint64_t refused) {
    keyed_ = keyed;
    refused_ = refused;
  }
  void StopAccepting(std::string reason);
  // Ends every running job now, with `reason` (the grace period is over).
  void EndAll(const std::string& reason, TimePoint now);
  // Back-pressure: while a client cannot take more messages (it reads
  // slower than its jobs produce events), nothing more of the jobs it owns
  // is dispatched; workers go on with other jobs. A follower that is not
  // the owner stops following (it asks again when it catches up).
  void SetClientBlocked(const PeerId& peer, bool blocked);
  // The ledger answered (anything): for its health in `fanout status`.
  void OnLedgerAlive(TimePoint now) { ledger_.Heard(now); }

  // Takes a result out of `env` rather than copying it.
  void OnWorkerMessage(const PeerId& peer, pb::Envelope&& env, TimePoint now);
  void OnWorkerMessage(const PeerId& peer, const pb::Envelope& env, TimePoint now) {
    OnWorkerMessage(peer, pb::Envelope(env), now);
  }
  void OnClientMessage(const PeerId& peer, const pb::Envelope& env, TimePoint now);
  // A reply from the ledger (bank jobs open and close their book there).
  void OnLedgerReply(const pb::LedgerReply& reply, TimePoint now);

  // Sends tasks wherever a worker has credit for a job with work waiting.
  void Dispatch(TimePoint now);
  // Heartbeats out; dead workers and silent clients. Call when NextWakeup() passes.
  void Tick(TimePoint now);
  TimePoint NextWakeup(TimePoint now) const;

  // What to send, in order; the caller sends and clears. Client events are
  // batched per job and moved here by to_clients().
  std::vector<Outgoing>& to_workers() { return to_workers_; }
  std::vector<Outgoing>& to_clients();

  size_t worker_count() const { return workers_.size(); }
  // Whether `peer` is a worker this scheduler counts as alive and taking
  // tasks (not declared dead, not draining). For checks from outside.
  bool TakesTasks(const PeerId& peer) const;
  // A worker's clock minus the coordinator's, as the heartbeats measured it.
  int64_t ClockOffsetMicros(const PeerId& peer) const;
  size_t job_count() const { return jobs_.size(); }
  std::vector<pb::Envelope>& to_ledger() { return ledger_.outbox(); }
  const SchedulerStats& stats() const { return stats_; }
  // Counts and histograms for /metrics, kept on the scheduler's thread.
  const Telemetry& telemetry() const { return telemetry_; }

 private:
  enum class TaskState : uint8_t { kPending, kRunning, kDone };
  struct TaskSlot {
    TaskState state = TaskState::kPending;
    uint8_t attempts = 0;  // dispatches so far
    uint8_t holders = 0;   // claims on it: workers running an attempt of it now
    TimePoint deadline{};  // of the attempt running now, when the job has a timeout
    TimePoint queued{};    // back in the queue since (a retry); unset: since accepted
  };
  struct TaskKey {
    std::string job;
    uint32_t index;
    bool operator==(const TaskKey&) const = default;
  };
  struct TaskKeyHash {
    size_t operator()(const TaskKey& k) const {
      return std::hash<std::string>()(k.job) * 31 + k.index;
    }
  };
  struct Worker {
    PeerId peer;
    pb::Hello hello;
    Liveness liveness;
    uint64_t seq = 0;  // join order, for stable tie-breaks
    bool draining = false;
    // Its clock minus ours, from the heartbeat exchange with the least
    // network delay seen so far (the most trustworthy sample).
    int64_t clock_offset_us = 0;
    int64_t best_delay_us = INT64_MAX;
    uint64_t serves = 0;  // the kinds it runs: bit i for the registry's kind i
    std::unordered_set<std::string> functions;  // the named functions it serves (call jobs)
    uint32_t slots = 0;                         // the most tasks it runs at once; 0: no cap
    uint64_t done = 0;                          // results it delivered, ok
    uint64_t failed = 0;                        // and failed
    // Its claims: the tasks it runs, and which attempts of each (an attempt
    // past its deadline may be sent again to the same worker).
    std::unordered_map<TaskKey, std::vector<uint32_t>, TaskKeyHash> inflight;
    std::unordered_map<std::string, uint32_t> load;  // claims per job: what credit counts
    uint32_t claims = 0;                             // in all
  };
  struct Job {
    std::string id;
    uint64_t seq = 0;  // acceptance order, for stable tie-breaks
    // The client that submitted it (empty once detached or after a restart
    // until it comes back), and everyone who hears its events.
    PeerId owner;
    std::set<PeerId> followers;
    bool dispatched_events = true;  // false while its only follower asked for results only
    bool awaiting_owner = false;    // resumed: runs again once its owner is back...
    TimePoint owner_due{};          // ...or ends if it is not back by then
    pb::JobSpec spec;
    uint32_t priority = 5;
    uint64_t served = 0;   // when it last got a slot: round-robin among equals
    uint32_t running = 0;  // tasks in kRunning
    bool started = false;  // some task was dispatched
    const jobs::JobKind* kind = nullptr;
    uint64_t kind_bit = 0;  // its bit in Worker::serves
    std::string function;   // the name its workers must serve too (the kind's RoutingName)
    uint32_t max_attempts = 0;
    TimePoint accepted_at;
    int64_t accepted_us = 0;      // unix time, for `fanout jobs`
    std::vector<TaskSlot> slots;  // by index - 1
    std::deque<uint32_t> retry;   // requeued tasks, dispatched before fresh ones
    uint32_t next_fresh = 1;      // tasks from here on were never dispatched
    uint32_t ok = 0;
    uint32_t failed = 0;
    uint32_t capacity = 0;
    std::vector<PeerId> assigned;  // the workers it may use, when it caps them
    std::set<std::string> used;    // workers that delivered its results
    Duration task_timeout{};       // zero: none
    std::map<uint32_t, std::vector<std::string>> faults;  // what went wrong, per attempt of a task
    pb::Envelope events;                                  // TaskEvents waiting to go to the client
    // Kinds that need the ledger: it is called before any task runs
    // (opening) and after the last before JobDone goes out (closing).
    enum class Phase : uint8_t { kOpening, kRunning, kClosing } phase = Phase::kRunning;
    std::string end_reason;
    // Waiting: since when no connected worker could run it (or the ledger
    // has not opened it), and what its client was last told about that.
    TimePoint stuck_since;
    std::string waiting_said;
    bool drawn = false;  // a live timeline draws it
    // Its tasks finished since the last take: a ring of kDrawnPerTake.
    std::vector<DrawnTask> drawn_ring;
    size_t drawn_next = 0;   // the slot the next one takes
    size_t drawn_count = 0;  // how many the ring holds
    // The ring's tasks, oldest first; empties it.
    std::vector<DrawnTask> TakeDrawnTasks();
  };
  struct Client {
    Liveness liveness;
    std::set<std::string> owns;     // jobs it submitted (not detached)
    std::set<std::string> follows;  // jobs whose events it hears
  };

  void OnHello(const PeerId& peer, const pb::Hello& hello, TimePoint now);
  // Moves what a reconnected worker still holds from its old entry to its new one.
  void Adopt(Worker& old, Worker& fresh, const pb::Hello& hello, TimePoint now);
  // A task a (re)connecting worker says it runs that we had not given it.
  void HoldReported(Worker& worker, const pb::TaskRef& ref, TimePoint now);
  // Gives up a worker's claims on `tasks`; those no one else holds are
  // requeued, as a counted attempt when they may have `ran` there.
  void LetGo(const std::unordered_map<TaskKey, std::vector<uint32_t>, TaskKeyHash>& tasks,
             const std::string& worker, bool ran, TimePoint now);
  void OnResult(Worker* worker, pb::Result&& result, TimePoint now);
  void OnHeartbeat(Worker& worker, const pb::Heartbeat& heartbeat);
  void OnReturned(Worker& worker, const pb::TaskReturned& returned);
  // A running task that no one holds and that never ran goes back to the
  // front of the queue, its attempt not counted.
  void Unrun(Job& job, uint32_t index);
  void OnSubmit(const PeerId& peer, const pb::Submit& submit, TimePoint now);
  // Turns a submitted job away with `why`; `unavailable`: the coordinator
  // cannot take jobs now, the job itself is fine.
  void Reject(const PeerId& peer, const std::string& why, bool unavailable = false);
  Job& AddJob(const std::string& id, const pb::JobSpec& spec, TimePoint now);
  // Kinds that need the ledger: calls it before any task runs.
  void OpenOnLedger(Job& job, TimePoint now);
  void OnCancel(const PeerId& peer, const pb::Cancel& cancel, TimePoint now);
  void OnStatus(const PeerId& peer, TimePoint now);
  void OnJobs(const PeerId& peer, const pb::JobsRequest& request, TimePoint now);
  void OnWatch(const PeerId& peer, const pb::Watch& watch, TimePoint now);
  // Sends `results` to `peer` as replayed DONE events, in envelopes of a
  // bounded size.
  void Replay(const PeerId& peer, const std::string& job_id,
              const std::vector<pb::Result>& results);
  // `peer` hears the job's events from now on; as its owner, it takes the
  // job over from the previous owner (a new connection of the same client).
  void Follow(Job& job, const PeerId& peer, bool owner, TimePoint now);
  void Unfollow(Job& job, const PeerId& peer);
  Client& ClientFor(const PeerId& peer, TimePoint now);
  // What `fanout jobs` shows of a running job.
  pb::JobInfo Info(const Job& job, TimePoint now) const;

  Worker* FindWorker(const PeerId& peer);
  Job* FindJob(const std::string& id);
  static uint64_t ServesMask(const pb::Hello& hello);
  // Whether `worker` runs `job`'s tasks: the kind, and its function if it names one.
  static bool Serves(const Worker& worker, const Job& job) {
    return (worker.serves & job.kind_bit) != 0 &&
           (job.function.empty() || worker.functions.contains(job.function));
  }
  // A kind's bit in Worker::serves: its index in the registry.
  static uint64_t KindBit(const jobs::JobKind* kind);
  uint32_t Capacity(const Worker& worker, const Job& job) const;
  // Sets a task's state, keeping the job's count of running tasks.
  static void SetState(Job& job, TaskSlot& slot, TaskState state);
  uint32_t FreeCredit(const Worker& worker, const Job& job) const;
  Worker* PickWorker(Job& job);
  void RefreshAssignment(Job& job);
  static bool HasPending(Job& job);
  static uint32_t PopPending(Job& job);
  void SendTask(Job& job, Worker& worker, uint32_t index, TimePoint now);
  // Puts a claim on attempt `attempt` of a task on a worker's books (it is
  // running it) and counts it among the task's holders.
  void Hold(Worker& worker, const TaskKey& key, uint32_t attempt);
  // Removes the worker's claim on that attempt (any one, for attempt 0);
  // true if it had one. A second result of one attempt releases nothing.
  bool Release(Worker& worker, const std::string& job_id, uint32_t index, uint32_t attempt);
  // An attempt of a task ended without a result (`fault` says how): it runs
  // again, or fails once it has had max_attempts.
  void Requeue(Job& job, uint32_t index, std::string fault, Telemetry::Retry why, TimePoint now);
  // A task's end (with its result when a worker sent one) and a job's, in
  // telemetry_.
  void CountTask(const Job& job, bool ok, const pb::Result* result);
  void CountJob(const Job& job, const std::string& state);
  // Keeps a finished task of a drawn job.
  static void AddDrawn(Job& job, const pb::Result& result);
  // Runs again, elsewhere, the tasks whose attempt ran past its deadline.
  void CheckDeadlines(TimePoint now);
  // A drained worker that has exited.
  void Forget(const PeerId& peer, TimePoint now);
  void DeclareDead(const PeerId& peer, TimePoint now);
  // Queues an event for the job's followers, moving `result` (when given)
  // into it; returns the event's result, or null when nobody follows the
  // job (`result` is then left as it was).
  pb::Result* AddEvent(Job& job, pb::TaskEvent::Type type, uint32_t index, uint32_t attempt,
                       const std::string& worker, pb::Result* result);
  void FlushEvents(Job& job);
  // Sends `env` to every follower of the job.
  void ToFollowers(const Job& job, pb::Envelope env);
  // Tells the workers still running tasks of an ending job to stop them,
  // and releases their claims.
  void StopTasks(Job& job, const std::string& reason);
  void SendStop(const PeerId& peer, const std::string& job_id, const std::string& reason);
  // Ends a job: kinds that need the ledger call it first (closing), others
  // complete at once.
  void FinishJob(const std::string& id, const std::string& reason, TimePoint now);
  // `closed`: the ledger's answer to the closing call, for the kind to read.
  void CompleteJob(const std::string& id, const std::string& reason, TimePoint now,
                   const pb::LedgerReply* closed);
  void LedgerGaveUp(const std::string& id, TimePoint now);
  // Tells clients whose jobs no worker can take (or the ledger has not
  // opened), once the job has waited options_.waiting_notice.
  void NoticeWaiting(TimePoint now);
  // Why `job` cannot run now; empty when it can.
  std::string WhyWaiting(const Job& job) const;
  void Reply(std::vector<Outgoing>& box, const PeerId& peer, pb::Error::Code code,
             std::string message);

  SchedulerOptions options_;
  std::function<std::string()> new_job_id_;
  Journal* journal_;
  bool keyed_ = false;
  uint64_t refused_ = 0;
  std::string stopping_;  // why new jobs are rejected; empty: they are not
  std::unordered_set<PeerId> blocked_clients_;
  std::unordered_map<PeerId, Worker> workers_;
  std::unordered_map<std::string, Job> jobs_;
  std::unordered_map<PeerId, Client> clients_;
  std::deque<pb::JobInfo> ended_;  // the most recent first, at most remember_ended
  uint64_t next_worker_seq_ = 0;
  uint64_t next_job_seq_ = 0;
  uint64_t served_ = 0;
  std::vector<Job*> runnable_;  // Dispatch's scratch list
  // Results per second over the last 10 s, for tasks/s in `fanout status`.
  std::array<uint32_t, 10> per_second_{};
  int64_t second_ = 0;
  std::vector<Outgoing> to_workers_;
  std::vector<Outgoing> to_clients_;
  LedgerCalls ledger_;
  jobs::CoordinatorEnv kind_env_;
  SchedulerStats stats_;
  Telemetry telemetry_;
  std::vector<Drawn> drawn_ended_;  // drawn jobs that ended since the last TakeDrawn
};

}  // namespace fanout::coordinator
