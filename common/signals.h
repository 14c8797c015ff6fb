// Signals as events: SignalWatch blocks the given signals in the calling
// thread (and so in every thread started after it, including ZeroMQ's), and
// delivers them through a file descriptor that an event loop polls.
//
// Create it first thing in main(), before any thread exists.
#pragma once

#include <initializer_list>
#include <optional>

#include "common/result.h"

namespace fanout {

class SignalWatch {
 public:
  static Result<SignalWatch> Block(std::initializer_list<int> signals);
  SignalWatch(SignalWatch&& other) noexcept;
  SignalWatch& operator=(SignalWatch&&) = delete;
  ~SignalWatch();

  int fd() const { return fd_; }
  // The next pending signal, or nullopt when none is pending.
  std::optional<int> Take();

 private:
  explicit SignalWatch(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace fanout
