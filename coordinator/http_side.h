// The coordinator's HTTP side (--http): the dashboard at /, /metrics, and
// /api/status, /api/jobs and /api/jobs/ID (the JSON of `fanout status
// --json` and `fanout jobs --json`). Requests are served on civetweb's
// threads from a snapshot the socket loop publishes every kPublishEvery;
// no request ever touches the scheduler. Cancelling from the page queues
// the request for the loop (TakeCancels).
#pragma once

#include <memory>
#include <string>
#include <vector>

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

class HttpSide {
 public:
  // Listens on `address` (HOST:PORT). Beyond loopback it needs keys (and
  // then every request needs the keys' http.token) or `insecure`.
  static Result<std::unique_ptr<HttpSide>> Start(const std::string& address, const Keys* keys,
                                                 bool insecure);

  // On the loop's thread: whether a snapshot is due, and publishing it.
  bool Due(TimePoint now) const { return now >= next_publish_; }
  TimePoint next_publish() const { return next_publish_; }
  void Publish(const Scheduler& scheduler, std::vector<double> commits, TimePoint now);

  // A job to cancel from the page: (job id, who asked).
  struct CancelRequest {
    std::string job_id;
    std::string by;
  };
  // On the loop's thread: the cancels asked since the last call.
  std::vector<CancelRequest> TakeCancels();

  std::string url() const { return server_->url(); }

 private:
  struct Snapshot {
    std::string status;   // fanout status --json
    nlohmann::json jobs;  // fanout jobs --all --json
  };
  HttpSide() = default;
  http::Response Api(const http::Request& request);
  std::shared_ptr<const Snapshot> Current();

  Metrics metrics_;
  TimePoint next_publish_{};
  Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ GUARDED_BY(mu_);
  std::vector<CancelRequest> cancels_ GUARDED_BY(mu_);
  std::unique_ptr<http::Server> server_;  // last: it goes first, with its threads
};

}  // namespace fanout::coordinator
