// The simulated world around the real Scheduler and Journal: simulated time,
// a network with ZeroMQ's guarantees and no more, workers, clients and a
// ledger that follow fanout's protocol, and faults, all driven by one seed.
//
// Everything happens as events on one queue ordered by (time, sequence);
// an event may send messages (deliveries are events too), start timers or
// inject faults. After every event the invariants are checked; the first
// one broken is a Violation, with the seed and the last events before it.
// The whole trace is hashed, so a seed's run can be compared across
// machines and builds, and replayed line by line with --trace.
//
// The network: each connection delivers in order in each direction (a
// later message never overtakes an earlier one), with a random latency;
// what is in flight when a connection closes (a worker reconnects, the
// coordinator dies) is lost. Duplicates and reordering come from where they
// come in real life: a worker resending after a reconnect, two attempts of
// a task finishing, messages on a new connection passing an old one.
//
// Single-threaded and deterministic: nothing here reads a real clock or a
// random device.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/journal.h"
#include "coordinator/scheduler.h"
#include "sim/random.h"
#include "sim/simulation.h"

namespace fanout::sim {

class World;
class SimWorker;
class SimClient;

// One ZeroMQ connection between a worker or client and the coordinator.
struct Conn {
  uint64_t id = 0;
  coordinator::PeerId peer;  // the routing id the coordinator sees
  bool open = true;
  bool worker = true;                // else a client
  void* owner = nullptr;             // the SimWorker or SimClient on the other end
  TimePoint up_tail{}, down_tail{};  // the last delivery time each way (order holds)
};

// What the world knows of a job, to check what its client is told.
struct JobTruth {
  std::string id;
  pb::JobSpec spec;
  SimClient* client = nullptr;
  bool ended = false;                 // its client got JobDone
  std::optional<TimePoint> snapshot;  // bank: when the ledger read its book back
};

// The ledger as the coordinator and the workers use it: books opened and
// read back for bank jobs, transfers applied once per id. It can be down
// (requests unanswered), ask to be asked again, or answer twice.
class SimLedger {
 public:
  explicit SimLedger(World& world) : world_(world) {}
  void OnRequest(const pb::LedgerRequest& request);
  // A worker applies transfer `index` of `job`: done (now or before), the
  // ledger is down (try again), or refused (the book is sealed).
  enum class Applied { kDone, kDown, kRefused };
  Applied Apply(const std::string& job, uint32_t index);
  bool IsOpen(const std::string& job) const { return open_.contains(job); }
  void SetDown(bool down) { down_ = down; }
  bool down() const { return down_; }

 private:
  World& world_;
  bool down_ = false;
  std::set<std::string> open_;
  std::set<std::string> sealed_;
  std::set<std::pair<std::string, uint32_t>> applied_;
};

class World {
 public:
  World(uint64_t seed, const SimOptions& options);
  ~World();
  SimResult Run();

  // ---- for the actors
  TimePoint now() const { return now_; }
  Rng& rng() { return rng_; }
  const SimOptions& options() const { return options_; }
  bool faulty() const { return faulty_; }
  // Runs `fn` at `when` (not before now).
  void At(TimePoint when, std::function<void()> fn);
  void After(Duration d, std::function<void()> fn) { At(now_ + d, std::move(fn)); }
  // Opens a connection to the coordinator; nullptr while it is down.
  Conn* Connect(void* owner, bool worker);
  void Close(Conn* conn);
  // Sends to the coordinator on `conn`, after a latency, in order.
  void Send(Conn* conn, const pb::Envelope& env);
  // The ledger's answer to the coordinator, on its own connection.
  void ReplyFromLedger(const pb::Envelope& reply);
  SimLedger& ledger() { return ledger_; }
  bool coordinator_up() const { return scheduler_ != nullptr; }
  JobTruth* Job(const std::string& id);
  // An accepted job, picked at random; empty when there is none.
  std::string AnyJob();
  void Accepted(const std::string& id, const pb::JobSpec& spec, SimClient* client);
  // Records an event in the trace (and its hash).
  void Trace(std::string line);
  // Records that invariant `name` is broken.
  void Violate(const std::string& name, const std::string& what);
  Duration heartbeat() const { return milliseconds(500); }

 private:
  struct Event {
    TimePoint at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  // A message that reached the coordinator and waits for its next turn.
  struct Inbound {
    coordinator::PeerId peer;
    bool worker;
    pb::Envelope env;
    bool ledger;  // from the ledger (a reply, or the answer to a health ping)
  };

  // The coordinator: a real Scheduler on a real Journal, turned as the
  // socket loop turns it (read what arrived, tick when due, dispatch,
  // commit, send). A crash loses what is in flight and, after a commit,
  // maybe what that turn would have sent.
  void StartCoordinator();
  void CrashCoordinator(bool after_commit);
  void ScheduleTurn();
  void Turn(bool send = true);
  void Route();
  void ScheduleWake();
  Duration Latency();

  // The population and its faults, while the fault phase lasts; then calm:
  // everything back up, and every job must end within a bound.
  void Chaos();
  void NewClient();
  uint32_t Slots();
  void Calm();
  bool AllEnded() const;

  uint64_t seed_;
  SimOptions options_;
  Rng rng_;
  TimePoint start_;
  TimePoint now_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  uint64_t seq_ = 0;
  uint64_t events_ = 0;
  bool faulty_ = true;  // the fault phase; then calm
  std::string journal_path_;
  std::unique_ptr<coordinator::Journal> journal_;
  std::unique_ptr<coordinator::Scheduler> scheduler_;
  uint64_t incarnation_ = 0;  // coordinator starts
  uint64_t next_job_ = 0;
  TimePoint wake_at_ = TimePoint::max();
  std::deque<Inbound> inbox_;
  bool turn_pending_ = false;
  std::set<coordinator::PeerId> blocked_;  // clients told to be slow readers
  TimePoint calm_until_ = TimePoint::max();
  TimePoint last_turn_{};  // a loop that wakes for nothing, again and again
  uint64_t turns_at_instant_ = 0;
  std::map<uint64_t, Conn> conns_;
  std::unordered_map<coordinator::PeerId, uint64_t> by_peer_;
  uint64_t next_conn_ = 1;
  SimLedger ledger_;
  std::vector<std::unique_ptr<SimWorker>> workers_;
  std::vector<std::unique_ptr<SimClient>> clients_;
  std::map<std::string, JobTruth> jobs_;
  std::deque<std::string> recent_;  // the last trace lines, for a violation's report
  uint64_t hash_ = 0xcbf29ce484222325ULL;
  SimResult result_;
};

}  // namespace fanout::sim
