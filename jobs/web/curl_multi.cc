#include "jobs/web/curl_multi.h"

#include <spdlog/spdlog.h>

#include <mutex>
#include <vector>

namespace fanout::jobs::web {

void EnsureCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

CurlMulti::CurlMulti(EventLoop& loop) : loop_(loop) {
  EnsureCurl();
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  // Keep as many idle connections as we may have transfers in flight.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 2048L);
}

CurlMulti::~CurlMulti() {
  // Transfers still here belong to abandoned coroutines: drop them.
  for (auto& [fd, watch] : watches_) loop_.Unwatch(watch);
  if (timer_) loop_.Cancel(*timer_);
  curl_multi_cleanup(multi_);
}

bool CurlMulti::Add(Pending& pending) {
  curl_easy_setopt(pending.easy, CURLOPT_PRIVATE, &pending);
  const CURLMcode rc = curl_multi_add_handle(multi_, pending.easy);
  if (rc != CURLM_OK) {
    pending.code = CURLE_FAILED_INIT;
    spdlog::warn("cannot start a transfer: {}", curl_multi_strerror(rc));
    return false;
  }
  ++in_flight_;
  return true;
}

int CurlMulti::OnSocket(CURL*, curl_socket_t fd, int what, void* self, void*) {
  auto* m = static_cast<CurlMulti*>(self);
  auto it = m->watches_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    if (it != m->watches_.end()) {
      m->loop_.Unwatch(it->second);
      m->watches_.erase(it);
    }
    return 0;
  }
  const short events = static_cast<short>(((what & CURL_POLL_IN) ? ZMQ_POLLIN : 0) |
                                          ((what & CURL_POLL_OUT) ? ZMQ_POLLOUT : 0));
  if (it != m->watches_.end()) {
    m->loop_.SetEvents(it->second, events);
  } else {
    m->watches_[fd] = m->loop_.WatchFd(fd, events, [m, fd](short revents) {
      const int ev = ((revents & ZMQ_POLLIN) ? CURL_CSELECT_IN : 0) |
                     ((revents & ZMQ_POLLOUT) ? CURL_CSELECT_OUT : 0) |
                     ((revents & ZMQ_POLLERR) ? CURL_CSELECT_ERR : 0);
      m->Action(fd, ev);
    });
  }
  return 0;
}

int CurlMulti::OnTimer(CURLM*, long timeout_ms, void* self) {
  auto* m = static_cast<CurlMulti*>(self);
  if (m->timer_) {
    m->loop_.Cancel(*m->timer_);
    m->timer_.reset();
  }
  if (timeout_ms >= 0) {
    // Never call back into libcurl from here: the loop runs the action.
    m->timer_ = m->loop_.After(milliseconds(timeout_ms), [m] {
      m->timer_.reset();
      m->Action(CURL_SOCKET_TIMEOUT, 0);
    });
  }
  return 0;
}

void CurlMulti::Action(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  ResumeFinished();
}

void CurlMulti::ResumeFinished() {
  std::vector<Pending*> done;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Pending* pending = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &pending);
    pending->code = msg->data.result;
    curl_multi_remove_handle(multi_, msg->easy_handle);
    --in_flight_;
    done.push_back(pending);
  }
  // Resumed coroutines may start transfers; only after the queue is read.
  for (Pending* pending : done) pending->waiter.resume();
}

}  // namespace fanout::jobs::web
