// The coordinator's HTTP side (--http): the dashboard at /, /metrics, and
// /api: status, jobs, one job (what `fanout result ID --json` prints, also
// while it runs) and its timeline (the drawing of `--timeline`), tasks/s
// over the last minutes, and cancelling.
//
// No request ever touches the scheduler. Every kPublishEvery the socket loop
// publishes a snapshot (status, jobs, metrics) that requests read. A
// running job's live timeline is drawn from what the scheduler keeps of
// its tasks while it is drawn (Scheduler::Draw: a few fields a task, the
// last kDrawnTasks), handed over at each publish. A job's whole report (the
// JSON, and the timeline of a job that ended before it was drawn) comes from
// following it as a client would: a Watch under kDashboardPeer, its results
// replayed, then live events, which the loop takes out of the clients'
// outbox. HTTP threads render each view once per change, however many pages
// ask. The loop only ever takes short locks here, never one an HTTP thread
// holds while it renders. A cancel from the page is queued for the loop.
//
//   auto http = HttpSide::Start("127.0.0.1:5580", keys, insecure);
//   loop: ...; (*http)->Exchange(scheduler, now); if ((*http)->Due(now)) (*http)->Publish(...);
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/job_client.h"
#include "common/mutex.h"
#include "common/result.h"
#include "common/security.h"
#include "coordinator/metrics.h"
#include "coordinator/scheduler.h"
#include "http/server.h"

namespace fanout::coordinator {

// How stale /metrics and /api may be.
inline constexpr Duration kPublishEvery = milliseconds(200);
// The default --http address (FANOUT_HTTP); empty turns it off.
inline constexpr std::string_view kDefaultHttp = "127.0.0.1:5580";
// The dashboard's routing id as the scheduler's client. No ZeroMQ peer can
// have it: the ids a ROUTER makes are 5 bytes, and a peer may not choose
// one that starts with a zero byte.
inline const PeerId kDashboardPeer("\0dashboard", 10);
// A job no page asked about for this long is no longer drawn or followed.
inline constexpr Duration kViewIdle = std::chrono::seconds(30);
// Events held for the HTTP threads past this many: the job is followed
// afresh when next asked about (its results replayed), rather than held.
inline constexpr size_t kMaxHeldEvents = 200'000;

class HttpSide {
 public:
  // Listens on `address` (HOST:PORT). Beyond loopback it needs keys (and
  // then every request needs the keys' http.token) or `insecure`.
  static Result<std::unique_ptr<HttpSide>> Start(const std::string& address, const Keys* keys,
                                                 bool insecure);
  ~HttpSide();

  // On the loop's thread: whether a snapshot is due, and publishing it.
  bool Due(TimePoint now) const { return now >= next_publish_; }
  TimePoint next_publish() const { return next_publish_; }
  void Publish(const Scheduler& scheduler, std::vector<double> commits, TimePoint now);
  // On the loop's thread, every turn, last before the clients' messages go
  // out: draws and follows the jobs pages asked about (and stops, for the
  // ones they no longer ask about), and takes what the scheduler said to
  // the dashboard out of `scheduler.to_clients()`.
  void Exchange(Scheduler& scheduler, TimePoint now);

  // A job to cancel from the page: (job id, who asked).
  struct CancelRequest {
    std::string job_id;
    std::string by;
  };
  // On the loop's thread: the cancels asked since the last call.
  std::vector<CancelRequest> TakeCancels() { return std::exchange(cancelling_, {}); }

  std::string url() const { return server_->url(); }

 private:
  struct Snapshot {
    std::string status;   // fanout status --json
    nlohmann::json jobs;  // fanout jobs --all --json
    std::string rate;     // [[unix ms, tasks/s], ...] over the last minutes
  };
  // One job pages look at (HTTP threads' side): drawn while it runs (its
  // last tasks), followed for its whole report when that is asked for.
  struct View {
    bool drawing = false;      // the scheduler keeps its tasks for us
    bool drawn_out = false;    // it ended while drawn: the drawing is whole
    bool not_running = false;  // it could not be drawn: it ran no more
    std::deque<DrawnTask> drawn;
    bool following = false;  // a Watch was asked for
    bool accepted = false;   // ... and answered
    bool replaying = false;  // ... for a job that had ended: its results and end are coming
    bool ended = false;
    std::string error;  // the scheduler does not know the job
    client::JobReport report;
    uint64_t version = 0;
    TimePoint asked{};
    // Each rendering (the JSON, the timeline) and the version it was made of.
    std::array<std::pair<uint64_t, std::string>, 2> rendered = {
        {{UINT64_MAX, ""}, {UINT64_MAX, ""}}};
  };
  // What the scheduler said about a followed job, taken as a client would.
  static void Follow(const pb::Envelope& env, View& view);
  // What the loop hands the HTTP threads about a job.
  struct Said {
    enum What : uint8_t {
      kEnvelope,  // what the scheduler said to the dashboard (an Error: about this job)
      kDrawn,     // tasks it finished while drawn (none when drawing began)
      kNotDrawn,  // it does not run (any more): follow it instead
      kDropped,   // no longer followed (no page asked, or too much was held)
    };
    std::string job_id;
    What what = kEnvelope;
    pb::Envelope envelope = {};
    std::vector<DrawnTask> drawn = {};
    bool ended = false;  // kDrawn: its last tasks
  };
  // A job a request asked about: to draw it (its live timeline), or to
  // follow it (its whole report).
  struct Ask {
    std::string job_id;
    bool follow = false;
  };
  // What a request asks of a job: its report as JSON (`fanout result
  // --json`), or its timeline.
  enum class Rendering : uint8_t { kJson, kTimeline };

  HttpSide() = default;
  http::Response Api(const http::Request& request);
  // /api/jobs/ID and /api/jobs/ID/timeline.svg, after waiting (up to a few
  // seconds) for the scheduler's first answer. `info`: the job as the
  // snapshot lists it (null when it does not).
  http::Response JobView(const std::string& id, Rendering rendering, const nlohmann::json* info);
  // The timeline of what `view` has: its drawn tasks, or its report.
  static std::string TimelineSvg(const std::string& id, const View& view,
                                 const nlohmann::json* info);
  // HTTP threads: takes what the loop handed over into the views.
  void TakeSaid() REQUIRES(views_mu_);
  // The loop: hands `said` over to the HTTP threads.
  void HandOver(std::vector<Said> said);
  std::shared_ptr<const Snapshot> Current();

  Metrics metrics_;
  TimePoint next_publish_{};
  // The loop's: tasks/s samples, and what it draws and follows for pages.
  std::deque<std::pair<int64_t, double>> rate_;
  std::string rate_json_ = "[]";  // rate_ as /api/rate gives it, made once a sample
  uint64_t rate_results_ = 0;
  TimePoint rate_at_{};
  std::map<std::string, TimePoint> drawn_;     // job -> last asked about
  std::map<std::string, TimePoint> followed_;  // job -> last asked about
  std::vector<CancelRequest> cancelling_;      // taken from cancels_ by Exchange
  // Events in said_ since the HTTP threads last took it (the loop adds, they reset).
  std::atomic<size_t> held_events_{0};

  Mutex mu_;  // short holds only: the loop takes it
  std::shared_ptr<const Snapshot> snapshot_ GUARDED_BY(mu_);
  std::vector<CancelRequest> cancels_ GUARDED_BY(mu_);
  std::vector<Ask> asked_ GUARDED_BY(mu_);  // since the last turn
  std::vector<Said> said_ GUARDED_BY(mu_);
  std::atomic<bool> pending_{false};  // cancels_ or asked_ hold something
  CondVar said_arrived_;              // with mu_

  Mutex views_mu_;  // HTTP threads only (held while rendering); before mu_ when both
  std::map<std::string, View> views_ GUARDED_BY(views_mu_);

  std::unique_ptr<http::Server> server_;  // last: it goes first, with its threads
};

}  // namespace fanout::coordinator
