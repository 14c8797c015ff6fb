#include "common/event_loop.h"

#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace fanout {

EventLoop::EventLoop() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
  WatchFd(wake_fd_, ZMQ_POLLIN, [this](short) {
    uint64_t n;
    while (read(wake_fd_, &n, sizeof n) == sizeof n) {
    }
    std::vector<std::function<void()>> posted;
    {
      std::lock_guard lock(posted_mu_);
      posted.swap(posted_);
    }
    for (auto& fn : posted) fn();
    if (on_wake_) on_wake_();
  });
}

EventLoop::~EventLoop() { close(wake_fd_); }

EventLoop::WatchId EventLoop::WatchSocket(zmq::socket_t& socket, short events, Handler handler) {
  watches_.push_back({next_watch_, socket.handle(), -1, events, std::move(handler)});
  return next_watch_++;
}

EventLoop::WatchId EventLoop::WatchFd(int fd, short events, Handler handler) {
  watches_.push_back({next_watch_, nullptr, fd, events, std::move(handler)});
  return next_watch_++;
}

void EventLoop::SetEvents(WatchId id, short events) {
  for (Watch& w : watches_) {
    if (w.id == id) w.events = events;
  }
}

void EventLoop::Unwatch(WatchId id) {
  std::erase_if(watches_, [id](const Watch& w) { return w.id == id; });
}

EventLoop::TimerId EventLoop::At(TimePoint when, std::function<void()> fn) {
  TimerId id{when, next_timer_++};
  timers_.emplace(id, std::move(fn));
  return id;
}

void EventLoop::Cancel(TimerId id) { timers_.erase(id); }

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  Wake();
}

void EventLoop::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

Duration EventLoop::UntilNextTimer(Duration cap) const {
  if (timers_.empty()) return cap;
  return std::clamp(timers_.begin()->first.first - Now(), Duration::zero(), cap);
}

void EventLoop::FireTimers() {
  const TimePoint now = Now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    node.mapped()();  // may add or cancel timers
  }
}

void EventLoop::RunOnce(Duration max_wait) {
  std::vector<zmq::pollitem_t> items;
  std::vector<WatchId> ids;
  items.reserve(watches_.size());
  for (const Watch& w : watches_) {
    if (w.events == 0) continue;
    items.push_back({w.socket, w.fd, w.events, 0});
    ids.push_back(w.id);
  }
  const auto wait = std::chrono::ceil<milliseconds>(UntilNextTimer(max_wait));
  zmq::poll(items, wait);
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].revents == 0) continue;
    // A handler may unwatch others; look each one up again.
    auto it = std::find_if(watches_.begin(), watches_.end(),
                           [&](const Watch& w) { return w.id == ids[i]; });
    if (it == watches_.end()) continue;
    Handler handler = it->handler;  // the watch may go away while it runs
    handler(items[i].revents);
  }
  FireTimers();
}

void EventLoop::Run() {
  stopped_ = false;
  while (!stopped_) RunOnce(std::chrono::seconds(1));
}

}  // namespace fanout
