// CurlMulti: libcurl's multi interface driven by an EventLoop, so coroutines
// on the loop thread await transfers: hundreds in flight on one thread.
//
// libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
// to call it back (CURLMOPT_TIMERFUNCTION); the loop watches those sockets
// and runs curl_multi_socket_action when they are ready or the timer is due.
// Connections are kept in the multi handle's cache and reused.
//
//   CURLcode code = co_await multi.Perform(easy);
#pragma once

#include <curl/curl.h>

#include <coroutine>
#include <optional>
#include <unordered_map>

#include "common/event_loop.h"

namespace fanout::jobs::web {

// libcurl's process-wide set-up, done once.
void EnsureCurl();

class CurlMulti {
 public:
  explicit CurlMulti(EventLoop& loop);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  struct Pending {
    CURL* easy;
    std::coroutine_handle<> waiter;
    CURLcode code = CURLE_OK;
  };

  auto Perform(CURL* easy) {
    struct Awaiter {
      CurlMulti& multi;
      Pending pending;
      bool await_ready() const noexcept { return false; }
      bool await_suspend(std::coroutine_handle<> h) {
        pending.waiter = h;
        return multi.Add(pending);  // false: failed to start, resume at once
      }
      CURLcode await_resume() const noexcept { return pending.code; }
    };
    return Awaiter{*this, Pending{easy, {}}};
  }

  size_t in_flight() const { return in_flight_; }

 private:
  bool Add(Pending& pending);
  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* self, void* socketp);
  static int OnTimer(CURLM* multi, long timeout_ms, void* self);
  void Action(curl_socket_t fd, int events);
  void ResumeFinished();

  EventLoop& loop_;
  CURLM* multi_;
  std::unordered_map<curl_socket_t, EventLoop::WatchId> watches_;
  std::optional<EventLoop::TimerId> timer_;
  size_t in_flight_ = 0;
};

}  // namespace fanout::jobs::web
