#include "common/event_loop.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

#include "common/coro.h"

namespace fanout {
namespace {

using std::chrono::milliseconds;

co::Task<int> Twice(EventLoop& loop, int x) {
  co_await loop.Sleep(milliseconds(1));
  co_return 2 * x;
}

co::Task<int> Chain(EventLoop& loop) {
  int a = co_await Twice(loop, 3);
  int b = co_await Twice(loop, a);
  co_return b;
}

co::Task<void> Fails(EventLoop& loop) {
  co_await loop.Sleep(milliseconds(1));
  throw std::runtime_error("boom");
}

void RunUntil(EventLoop& loop, const bool& done) {
  const TimePoint give_up = Now() + std::chrono::seconds(10);
  while (!done && Now() < give_up) loop.RunOnce(milliseconds(50));
}

TEST(EventLoopTest, AwaitedTasksReturnTheirValues) {
  EventLoop loop;
  int result = 0;
  bool done = false;
  co::Spawn([](EventLoop& l, int& out, bool& d) -> co::Task<void> {
    out = co_await Chain(l);
    d = true;
  }(loop, result, done));
  RunUntil(loop, done);
  EXPECT_EQ(result, 12);
}

TEST(EventLoopTest, ExceptionsReachTheAwaiter) {
  EventLoop loop;
  std::string caught;
  bool done = false;
  co::Spawn([](EventLoop& l, std::string& out, bool& d) -> co::Task<void> {
    try {
      co_await Fails(l);
    } catch (const std::exception& e) {
      out = e.what();
    }
    d = true;
  }(loop, caught, done));
  RunUntil(loop, done);
  EXPECT_EQ(caught, "boom");
}

TEST(EventLoopTest, SleepsWakeInDeadlineOrder) {
  EventLoop loop;
  std::vector<int> order;
  for (int ms : {30, 10, 20}) {
    co::Spawn([](EventLoop& l, int d, std::vector<int>& out) -> co::Task<void> {
      co_await l.Sleep(milliseconds(d));
      out.push_back(d);
    }(loop, ms, order));
  }
  bool done = false;
  loop.After(milliseconds(40), [&] { done = true; });
  RunUntil(loop, done);
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
}

TEST(EventLoopTest, CancelledTimerNeverFires) {
  EventLoop loop;
  bool fired = false, done = false;
  auto id = loop.After(milliseconds(5), [&] { fired = true; });
  loop.Cancel(id);
  loop.After(milliseconds(20), [&] { done = true; });
  RunUntil(loop, done);
  EXPECT_FALSE(fired);
}

TEST(EventLoopTest, WakeFromAnotherThreadRunsOnTheLoop) {
  EventLoop loop;
  std::thread::id ran_on;
  bool done = false;
  loop.OnWake([&] {
    ran_on = std::this_thread::get_id();
    done = true;
  });
  std::thread other([&] { loop.Wake(); });
  RunUntil(loop, done);
  other.join();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(EventLoopTest, WatchedSocketCallsItsHandler) {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pair), b(ctx, zmq::socket_type::pair);
  a.bind("inproc://loop-test");
  b.connect("inproc://loop-test");
  EventLoop loop;
  std::string got;
  bool done = false;
  auto id = loop.WatchSocket(a, ZMQ_POLLIN, [&](short) {
    zmq::message_t m;
    (void)a.recv(m);
    got = m.to_string();
    done = true;
  });
  b.send(zmq::str_buffer("ping"));
  RunUntil(loop, done);
  loop.Unwatch(id);
  EXPECT_EQ(got, "ping");
}

}  // namespace
}  // namespace fanout
