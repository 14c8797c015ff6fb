// EventLoop: the reactor under the async model's coroutines.
//
// One thread runs it. It waits in zmq_poll on ZeroMQ sockets and plain file
// descriptors (libcurl's sockets, an eventfd) at once, fires timers, and runs
// the handlers and coroutines that became ready. Every method must be called
// on the loop's thread, except Wake(), which any thread may call.
//
//   EventLoop loop;
//   co::Spawn([](EventLoop& l) -> co::Task<void> {
//     co_await l.Sleep(milliseconds(100));
//     l.Stop();
//   }(loop));
//   loop.Run();
#pragma once

#include <sys/eventfd.h>

#include <coroutine>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"

namespace fanout {

class EventLoop {
 public:
  using Handler = std::function<void(short revents)>;
  using WatchId = uint64_t;
  using TimerId = std::pair<TimePoint, uint64_t>;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls `handler` whenever the socket or descriptor is ready for `events`
  // (ZMQ_POLLIN / ZMQ_POLLOUT), until Unwatch().
  WatchId WatchSocket(zmq::socket_t& socket, short events, Handler handler);
  WatchId WatchFd(int fd, short events, Handler handler);
  void SetEvents(WatchId id, short events);
  void Unwatch(WatchId id);

  TimerId At(TimePoint when, std::function<void()> fn);
  TimerId After(Duration d, std::function<void()> fn) { return At(Now() + d, std::move(fn)); }
  void Cancel(TimerId id);

  // co_await loop.Sleep(d): resumes the coroutine after `d`, on this loop.
  auto Sleep(Duration d) {
    struct Awaiter {
      EventLoop& loop;
      Duration d;
      bool await_ready() const noexcept { return d <= Duration::zero(); }
      void await_suspend(std::coroutine_handle<> h) {
        loop.After(d, [h] { h.resume(); });
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{*this, d};
  }

  // co_await loop.Sleep(d, stop): the same, but it ends early when `stop` is
  // requested (from any thread); true if it slept the whole time.
  auto Sleep(Duration d, std::stop_token stop) {
    // Shared with the timer and the stop callback: whichever comes first
    // resumes the coroutine, on the loop thread; the other does nothing.
    struct State {
      EventLoop* loop;
      std::coroutine_handle<> waiter;
      TimerId timer{};
      bool done = false;
      bool stopped = false;
    };
    struct Awaiter {
      EventLoop& loop;
      Duration d;
      std::stop_token stop;
      std::shared_ptr<State> state = std::make_shared<State>();
      std::optional<std::stop_callback<std::function<void()>>> on_stop;
      bool await_ready() const noexcept { return d <= Duration::zero() || stop.stop_requested(); }
      void await_suspend(std::coroutine_handle<> h) {
        state->loop = &loop;
        state->waiter = h;
        std::shared_ptr<State> s = state;
        s->timer = loop.After(d, [s] {
          if (s->done) return;
          s->done = true;
          s->waiter.resume();
        });
        on_stop.emplace(stop, std::function<void()>([s] {
                          s->loop->Post([s] {
                            if (s->done) return;
                            s->done = s->stopped = true;
                            s->loop->Cancel(s->timer);
                            s->waiter.resume();
                          });
                        }));
      }
      bool await_resume() const noexcept { return !stop.stop_requested() && !state->stopped; }
    };
    return Awaiter{*this, d, std::move(stop), std::make_shared<State>(), std::nullopt};
  }

  // Runs `fn` on the loop thread after any thread calls Wake().
  void OnWake(std::function<void()> fn) { on_wake_ = std::move(fn); }
  void Wake();  // thread-safe
  // Runs `fn` on the loop thread soon. Thread-safe: how another thread
  // hands the loop something to do (a stop request, say).
  void Post(std::function<void()> fn);

  void Run();  // until Stop()
  void Stop() { stopped_ = true; }
  // One turn: wait up to `max_wait` (less if a timer is due), then run
  // whatever is ready. For tests and for loops that do other work too.
  void RunOnce(Duration max_wait);

 private:
  struct Watch {
    WatchId id;
    void* socket;
    int fd;
    short events;
    Handler handler;
  };

  Duration UntilNextTimer(Duration cap) const;
  void FireTimers();

  int wake_fd_;
  std::function<void()> on_wake_;
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_
  std::vector<Watch> watches_;
  WatchId next_watch_ = 1;
  std::map<TimerId, std::function<void()>> timers_;
  uint64_t next_timer_ = 1;
  bool stopped_ = false;
};

}  // namespace fanout
