#include "coordinator/http_side.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fstream>

#include "client/report.h"

namespace fanout::coordinator {

// coordinator/dashboard.html, built in (dashboard_page.cc.in).
extern const std::string_view kDashboardPage;

namespace {

http::Response Json(const nlohmann::json& value, int status = 200) {
  return {status, "application/json", value.dump()};
}

http::Response NotFound(const std::string& what) { return Json({{"error", what}}, 404); }

}  // namespace

Result<std::unique_ptr<HttpSide>> HttpSide::Start(const std::string& address, const Keys* keys,
                                                  bool insecure) {
  const std::string as_endpoint = "tcp://" + address;
  if (Status s = CheckListen(as_endpoint, keys != nullptr, insecure); !s) {
    return InvalidArgument("--http: {}", s.error().message);
  }
  std::string token;
  if (keys != nullptr) {
    std::ifstream in(keys->token_path());
    std::getline(in, token);
    if (token.size() < 16) {
      return InvalidArgument("--http: {} holds no token (fanout keygen makes it)",
                             keys->token_path());
    }
  }
  std::unique_ptr<HttpSide> side(new HttpSide());
  HttpSide* self = side.get();
  std::map<std::string, http::Handler> routes = {
      {"/",
       [](const http::Request&) {
         return http::Response{200, "text/html; charset=utf-8", std::string(kDashboardPage)};
       }},
      {"/metrics",
       [self](const http::Request&) {
         return http::Response{200, "text/plain; version=0.0.4; charset=utf-8",
                               self->metrics_.Text()};
       }},
      {"/api/", [self](const http::Request& r) { return self->Api(r); }},
  };
  Result<std::unique_ptr<http::Server>> server =
      http::Server::Start({.address = address, .token = token}, std::move(routes));
  if (!server) return server.error();
  side->server_ = std::move(*server);
  return side;
}

void HttpSide::Publish(const Scheduler& scheduler, std::vector<double> commits, TimePoint now) {
  next_publish_ = now + kPublishEvery;
  const pb::StatusReply status = scheduler.StatusNow(now);
  metrics_.Update(scheduler.telemetry(), scheduler.stats(), status, commits);
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->status = client::StatusJson(status).dump();
  snapshot->jobs = nlohmann::json::array();
  const pb::JobsReply jobs = scheduler.JobsNow(/*all=*/true, now);
  for (const pb::JobInfo& job : jobs.jobs()) {
    snapshot->jobs.push_back(client::JobInfoJson(job));
  }
  MutexLock lock(mu_);
  snapshot_ = std::move(snapshot);
}

std::shared_ptr<const HttpSide::Snapshot> HttpSide::Current() {
  MutexLock lock(mu_);
  return snapshot_;
}

std::vector<HttpSide::CancelRequest> HttpSide::TakeCancels() {
  MutexLock lock(mu_);
  return std::exchange(cancels_, {});
}

http::Response HttpSide::Api(const http::Request& request) {
  const std::shared_ptr<const Snapshot> snapshot = Current();
  if (snapshot == nullptr) return Json({{"error", "starting"}}, 503);
  const std::string_view path = request.path;
  if (path == "/api/status") return {200, "application/json", snapshot->status};
  if (path == "/api/jobs") return Json(snapshot->jobs);
  if (!path.starts_with("/api/jobs/")) return NotFound(fmt::format("no API {}", path));
  std::string_view id = path.substr(std::string_view("/api/jobs/").size());
  const bool cancel = id.ends_with("/cancel");
  if (cancel) id.remove_suffix(std::string_view("/cancel").size());
  for (const nlohmann::json& job : snapshot->jobs) {
    if (job["job_id"] != id) continue;
    if (!cancel) return Json(job);
    if (request.method != "POST") return Json({{"error", "cancel with POST"}}, 405);
    MutexLock lock(mu_);
    cancels_.push_back({std::string(id), "the dashboard"});
    return Json({{"job_id", id}, {"cancelling", true}});
  }
  return NotFound(fmt::format("no job {} on this coordinator", id));
}

}  // namespace fanout::coordinator
