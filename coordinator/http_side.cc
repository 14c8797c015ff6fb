#include "coordinator/http_side.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <optional>

#include "client/report.h"
#include "client/timeline.h"
#include "http/metrics.h"
#include "jobs/registry.h"

namespace fanout::coordinator {

// coordinator/dashboard.html, built in (dashboard_page.cc.in).
extern const std::string_view kDashboardPage;

namespace {

// The tasks/s chart: a sample a second, for five minutes.
constexpr Duration kRateEvery = std::chrono::seconds(1);
constexpr size_t kRateSamples = 300;
// How long a request waits for the scheduler's first answer about a job.
constexpr Duration kFirstAnswer = std::chrono::seconds(3);
// Views kept for pages at most (the least recently asked about go first).
constexpr size_t kMaxViews = 32;

http::Response Json(const nlohmann::json& value, int status = 200) {
  return {status, "application/json", value.dump()};
}

http::Response NotFound(const std::string& what) { return Json({{"error", what}}, 404); }

// The job an envelope to a client is about; empty for anything else.
const std::string& JobOf(const pb::Envelope& env) {
  static const std::string none;
  switch (env.body_case()) {
    case pb::Envelope::kAccepted:
      return env.accepted().job_id();
    case pb::Envelope::kEvents:
      return env.events().job_id();
    case pb::Envelope::kJobDone:
      return env.job_done().job_id();
    default:
      return none;
  }
}

}  // namespace

// What the scheduler said about a followed job, taken as a client would.
void HttpSide::Follow(const pb::Envelope& env, View& view) {
  static client::JobObserver quiet;
  if (env.has_accepted()) {
    view.report = client::StartReport(env.accepted().spec(), env.accepted());
    view.accepted = true;
    view.replaying = env.accepted().ended();
    view.ended = false;
  } else if (env.has_events() && view.accepted) {
    client::ApplyEvents(view.report, env.events(), quiet);
  } else if (env.has_job_done() && view.accepted) {
    view.report.done = env.job_done();
    view.report.wall_ms = view.report.done.wall_ms();
    view.ended = true;
    view.replaying = false;
  } else if (env.has_error()) {
    view.error = env.error().message();
    view.ended = true;
  }
}

Result<std::unique_ptr<HttpSide>> HttpSide::Start(const std::string& address, const Keys* keys,
                                                  bool insecure) {
  Result<http::ServerOptions> options = http::Secured(address, keys, insecure);
  if (!options) return options.error();
  std::unique_ptr<HttpSide> side(new HttpSide());
  HttpSide* self = side.get();
  std::map<std::string, http::Handler> routes = {
      {"/",
       [](const http::Request&) {
         return http::Response{200, "text/html; charset=utf-8", std::string(kDashboardPage)};
       }},
      {"/metrics",
       [self](const http::Request&) {
         return http::Response{200, std::string(http::kExpositionType), self->metrics_.Text()};
       }},
      {"/api/", [self](const http::Request& r) { return self->Api(r); }},
  };
  Result<std::unique_ptr<http::Server>> server =
      http::Server::Start(std::move(*options), std::move(routes));
  if (!server) return server.error();
  side->server_ = std::move(*server);
  return side;
}

HttpSide::~HttpSide() { server_.reset(); }  // no request may outlive the rest

void HttpSide::Publish(const Scheduler& scheduler, std::vector<double> commits, TimePoint now) {
  next_publish_ = now + kPublishEvery;
  const pb::StatusReply status = scheduler.StatusNow(now);
  metrics_.Update(scheduler.telemetry(), scheduler.stats(), status, commits);
  if (now - rate_at_ >= kRateEvery) {
    const uint64_t results = scheduler.stats().results;
    if (rate_at_ != TimePoint{}) {
      const double seconds = std::chrono::duration<double>(now - rate_at_).count();
      rate_.emplace_back(UnixMicros() / 1000,
                         static_cast<double>(results - rate_results_) / seconds);
      if (rate_.size() > kRateSamples) rate_.pop_front();
      nlohmann::json rate = nlohmann::json::array();
      for (const auto& [ms, per_s] : rate_) rate.push_back({ms, std::round(per_s * 10) / 10});
      rate_json_ = rate.dump();
    }
    rate_results_ = results;
    rate_at_ = now;
  }
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->status = client::StatusJson(status).dump();
  snapshot->jobs = nlohmann::json::array();
  const pb::JobsReply jobs = scheduler.JobsNow(/*all=*/true, now);
  for (const pb::JobInfo& job : jobs.jobs()) {
    snapshot->jobs.push_back(client::JobInfoJson(job));
  }
  snapshot->rate = rate_json_;
  MutexLock lock(mu_);
  snapshot_ = std::move(snapshot);
}

void HttpSide::Exchange(Scheduler& scheduler, TimePoint now) {
  std::vector<Said> said;
  if (pending_.exchange(false)) {
    std::vector<Ask> asked;
    {
      MutexLock lock(mu_);
      asked.swap(asked_);
      cancelling_.insert(cancelling_.end(), cancels_.begin(), cancels_.end());
      cancels_.clear();
    }
    for (const auto& [id, follow] : asked) {
      auto& asked_at = follow ? followed_ : drawn_;
      auto [it, fresh] = asked_at.try_emplace(id, now);
      it->second = now;
      if (!fresh) continue;
      if (!follow) {
        if (scheduler.Draw(id, true)) {
          said.push_back({id, Said::kDrawn});
        } else {
          drawn_.erase(id);
          said.push_back({id, Said::kNotDrawn});
        }
        continue;
      }
      // Followed as `fanout watch` would: what the scheduler answers goes
      // to kDashboardPeer. An Error names no job: it is this Watch's.
      std::vector<Outgoing>& out = scheduler.to_clients();
      const size_t before = out.size();
      pb::Envelope watch = NewEnvelope();
      watch.mutable_watch()->set_job_id(id);
      scheduler.OnClientMessage(kDashboardPeer, watch, now);
      for (size_t i = before; i < out.size(); ++i) {
        if (out[i].peer == kDashboardPeer && out[i].envelope.has_error()) {
          said.push_back({id, Said::kEnvelope, std::move(out[i].envelope)});
          followed_.erase(id);
          out[i].peer.clear();  // taken
        }
      }
    }
  }
  if (Due(now)) {
    for (Drawn& d : scheduler.TakeDrawn()) {
      if (d.ended) drawn_.erase(d.job_id);
      said.push_back({d.job_id, Said::kDrawn, {}, std::move(d.tasks), d.ended});
    }
    for (auto it = drawn_.begin(); it != drawn_.end();) {
      if (now - it->second < kViewIdle) {
        ++it;
        continue;
      }
      scheduler.Draw(it->first, false);
      it = drawn_.erase(it);
    }
    for (auto it = followed_.begin(); it != followed_.end();) {
      if (now - it->second < kViewIdle && held_events_ < kMaxHeldEvents) {
        ++it;
        continue;
      }
      scheduler.StopFollowing(kDashboardPeer, it->first);
      said.push_back({it->first, Said::kDropped});
      it = followed_.erase(it);
    }
    if (!followed_.empty()) {  // the scheduler hears from its client now and then
      pb::Envelope heartbeat = NewEnvelope();
      heartbeat.mutable_heartbeat();
      scheduler.OnClientMessage(kDashboardPeer, heartbeat, now);
    }
  }
  // The scheduler may still talk to the dashboard (a heartbeat) after it
  // followed its last job: nothing for it ever goes out of a socket.
  std::vector<Outgoing>& out = scheduler.to_clients();
  bool any = false;
  // (An empty peer: an answer taken above.)
  for (const Outgoing& o : out) any |= o.peer == kDashboardPeer || o.peer.empty();
  if (any) {
    for (Outgoing& o : out) {
      if (o.peer != kDashboardPeer) continue;
      const std::string& job = JobOf(o.envelope);
      if (!job.empty() && followed_.contains(job)) {
        if (o.envelope.has_events()) held_events_ += o.envelope.events().events_size();
        if (o.envelope.has_job_done()) followed_.erase(job);  // it follows no more
        said.push_back({job, Said::kEnvelope, std::move(o.envelope)});
      }
      o.peer.clear();  // heartbeats and the like: nobody's
    }
    std::erase_if(out, [](const Outgoing& o) { return o.peer.empty(); });
  }
  if (!said.empty()) HandOver(std::move(said));
}

void HttpSide::HandOver(std::vector<Said> said) {
  {
    MutexLock lock(mu_);
    said_.insert(said_.end(), std::make_move_iterator(said.begin()),
                 std::make_move_iterator(said.end()));
  }
  said_arrived_.NotifyAll();
}

std::shared_ptr<const HttpSide::Snapshot> HttpSide::Current() {
  MutexLock lock(mu_);
  return snapshot_;
}

void HttpSide::TakeSaid() {
  std::vector<Said> said;
  {
    MutexLock lock(mu_);
    said.swap(said_);
    held_events_ = 0;
  }
  for (Said& s : said) {
    auto it = views_.find(s.job_id);
    if (it == views_.end()) continue;
    View& view = it->second;
    ++view.version;
    switch (s.what) {
      case Said::kDrawn:
        view.drawing = !s.ended;
        view.drawn_out = s.ended;
        for (DrawnTask& task : s.drawn) view.drawn.push_back(std::move(task));
        while (view.drawn.size() > kDrawnTasks) view.drawn.pop_front();
        break;
      case Said::kNotDrawn:
        view.drawing = false;
        view.not_running = true;  // the next request follows it
        break;
      case Said::kDropped:
        // Followed no more (no page asked, or too much was held): its next
        // request follows it afresh; an ended one stays as it is.
        if (!view.ended) view.following = view.accepted = false;
        break;
      case Said::kEnvelope:
        Follow(s.envelope, view);
        break;
    }
  }
}

std::string HttpSide::TimelineSvg(const std::string& id, const View& view,
                                  const nlohmann::json* info) {
  std::string title = fmt::format("job {}", id);
  if (view.accepted) {
    const std::string label = fmt::format(": {} under {}", jobs::KindName(view.report.spec),
                                          ModelName(view.report.spec.model()));
    return client::RenderSvg(client::LayOut(view.report, kDrawnTasks), title + label);
  }
  // The drawn tasks, as a report of those tasks only.
  client::JobReport drawn;
  if (info != nullptr) {
    drawn.accepted_us = (*info)["accepted_ms"].get<int64_t>() * 1000;
    title += fmt::format(": {} under {}", (*info)["kind"].get<std::string>(),
                         (*info)["model"].get<std::string>());
  }
  drawn.tasks.reserve(view.drawn.size());
  for (const DrawnTask& t : view.drawn) {
    client::TaskRecord& task = drawn.tasks.emplace_back();
    task.index = t.index;
    task.done = true;
    task.result.set_index(t.index);
    task.result.set_ok(t.ok);
    task.result.set_thread(t.thread);
    task.result.set_started_us(t.started_us);
    task.result.set_finished_us(t.finished_us);
    task.result.set_worker_id(t.worker);
    if (t.number) {
      task.result.set_number(*t.number);
    } else {
      t.ok ? task.result.set_text(t.label) : task.result.set_error(t.label);
    }
  }
  return client::RenderSvg(client::LayOut(drawn, kDrawnTasks), title);
}

http::Response HttpSide::JobView(const std::string& id, Rendering rendering,
                                 const nlohmann::json* info) {
  const bool whole = rendering == Rendering::kJson;
  // A job that runs is drawn; its report (or the timeline of one that
  // ended) needs following it.
  const bool running = info != nullptr && (*info)["ended_ms"].is_null();
  const TimePoint deadline = Now() + kFirstAnswer;
  while (true) {
    std::optional<http::Response> answer;
    std::optional<Ask> ask;
    {
      MutexLock lock(views_mu_);
      TakeSaid();
      auto [it, fresh] = views_.try_emplace(id);
      View& view = it->second;
      view.asked = Now();
      const bool draw = !whole && !view.accepted && !view.not_running &&
                        (running || view.drawing || view.drawn_out);
      // Asked on every request while it runs: the loop keeps it up while
      // pages look. What ended is what it is.
      if (draw && !view.drawn_out) {
        ask = Ask{id, false};
      } else if (!draw && (!view.following || !view.ended)) {
        ask = Ask{id, true};
        view.following = true;
      }
      // An ended job is shown once it is whole: as `fanout result` prints it.
      const bool ready = draw ? view.drawing || view.drawn_out : view.accepted && !view.replaying;
      if (!view.error.empty()) {
        answer = NotFound(view.error);
        views_.erase(it);
      } else if (ready) {
        auto& [version, body] = view.rendered[static_cast<size_t>(rendering)];
        if (version != view.version) {
          if (whole && !view.ended) {  // as of now, as a watcher would say
            view.report.wall_ms = static_cast<double>(UnixMicros() - view.report.accepted_us) / 1e3;
          }
          body = whole ? client::ReportJson(view.report).dump() : TimelineSvg(id, view, info);
          version = view.version;
        }
        answer = http::Response{200, whole ? "application/json" : "image/svg+xml", body};
      } else if (fresh && views_.size() > kMaxViews) {  // the least recently asked about goes
        auto oldest = views_.begin();
        for (auto v = views_.begin(); v != views_.end(); ++v) {
          if (v->second.asked < oldest->second.asked) oldest = v;
        }
        if (oldest != it) views_.erase(oldest);
      }
    }
    if (ask) {
      MutexLock lock(mu_);
      asked_.push_back(*ask);
      pending_ = true;
    }
    if (answer) return std::move(*answer);
    if (Now() >= deadline) {
      return Json(
          {{"error", fmt::format("the coordinator did not answer about job {} in time", id)}}, 503);
    }
    MutexLock lock(mu_);
    if (said_.empty()) said_arrived_.WaitFor(mu_, milliseconds(50));
  }
}

http::Response HttpSide::Api(const http::Request& request) {
  const std::shared_ptr<const Snapshot> snapshot = Current();
  if (snapshot == nullptr) return Json({{"error", "starting"}}, 503);
  const std::string_view path = request.path;
  if (path == "/api/status") return {200, "application/json", snapshot->status};
  if (path == "/api/jobs") return Json(snapshot->jobs);
  if (path == "/api/rate") return {200, "application/json", snapshot->rate};
  if (!path.starts_with("/api/jobs/")) return NotFound(fmt::format("no API {}", path));
  std::string_view id = path.substr(std::string_view("/api/jobs/").size());
  Rendering rendering = Rendering::kJson;
  bool cancel = false;
  if (id.ends_with("/timeline.svg")) {
    id.remove_suffix(std::string_view("/timeline.svg").size());
    rendering = Rendering::kTimeline;
  } else if (id.ends_with("/cancel")) {
    id.remove_suffix(std::string_view("/cancel").size());
    cancel = true;
  }
  const nlohmann::json* info = nullptr;
  for (const nlohmann::json& job : snapshot->jobs) {
    if (job["job_id"] == id) info = &job;
  }
  if (!cancel) return JobView(std::string(id), rendering, info);
  if (info == nullptr) return NotFound(fmt::format("no job {} on this coordinator", id));
  if (request.method != "POST") return Json({{"error", "cancel with POST"}}, 405);
  {
    MutexLock lock(mu_);
    cancels_.push_back({std::string(id), "the dashboard"});
  }
  pending_ = true;
  return Json({{"job_id", id}, {"cancelling", true}});
}

}  // namespace fanout::coordinator
