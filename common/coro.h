// Coroutines for the async model: co::Task<T> and co::Spawn.
//
// Task<T> is lazy: it starts when awaited and resumes its awaiter when it
// finishes (symmetric transfer, so long chains do not grow the stack). An
// exception inside it is rethrown at the co_await. Spawn() starts a
// Task<void> that nobody awaits; its frame frees itself when it ends.
// Tasks belong to the thread of the event loop that resumes them.
//
//   co::Task<int> Answer(EventLoop& loop) {
//     co_await loop.Sleep(milliseconds(10));
//     co_return 42;
//   }
//   co::Task<void> Main(EventLoop& loop) { int x = co_await Answer(loop); ... }
//   co::Spawn(Main(loop));
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace fanout::co {

namespace internal {

struct FinalAwaiter {
  bool await_ready() noexcept { return false; }
  template <typename Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    std::coroutine_handle<> next = h.promise().continuation;
    return next ? next : std::noop_coroutine();
  }
  void await_resume() noexcept {}
};

struct PromiseBase {
  std::coroutine_handle<> continuation;
  std::exception_ptr error;
  std::suspend_always initial_suspend() noexcept { return {}; }
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() { error = std::current_exception(); }
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;
  void return_value(T v) { value = std::move(v); }
  T Take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  void return_void() {}
  void Take() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace internal

template <typename T = void>
class [[nodiscard]] Task {
 public:
  struct promise_type : internal::Promise<T> {
    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
  };

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    handle_.promise().continuation = awaiter;
    return handle_;
  }
  T await_resume() { return handle_.promise().Take(); }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

namespace internal {

struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    // Spawned tasks catch what they can handle; anything else is a bug.
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

inline Detached RunDetached(Task<void> task) { co_await std::move(task); }

}  // namespace internal

// Starts `task` now; it runs until its first suspension and then on the loop.
inline void Spawn(Task<void> task) { internal::RunDetached(std::move(task)); }

}  // namespace fanout::co
