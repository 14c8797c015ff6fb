// Result<T>: a value or an Error, the one error style of fanout.
//
// Functions that can fail for reasons outside the program (bad input, a dead
// peer, a missing file) return Result<T> or Status (Result<void>). Exceptions
// thrown by libraries are caught at the edge that calls them and turned into
// an Error. A C++20 stand-in for std::expected; the names follow it.
//
//   Result<int> ParsePort(std::string_view s);
//   auto port = ParsePort("80");
//   if (!port) return port.error();
//   Use(*port);
#pragma once

#include <fmt/format.h>

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace fanout {

// Why something failed, as one line for a person.
struct Error {
  enum class Code {
    kInvalidArgument,  // the caller's input is wrong
    kUnavailable,      // a peer did not answer
    kNotFound,         // what was asked for does not exist (a job id)
    kInternal,         // anything else
  };
  Code code = Code::kInternal;
  std::string message;
};

template <typename... Args>
Error InvalidArgument(fmt::format_string<Args...> f, Args&&... args) {
  return {Error::Code::kInvalidArgument, fmt::format(f, std::forward<Args>(args)...)};
}
template <typename... Args>
Error Unavailable(fmt::format_string<Args...> f, Args&&... args) {
  return {Error::Code::kUnavailable, fmt::format(f, std::forward<Args>(args)...)};
}
template <typename... Args>
Error NotFound(fmt::format_string<Args...> f, Args&&... args) {
  return {Error::Code::kNotFound, fmt::format(f, std::forward<Args>(args)...)};
}
template <typename... Args>
Error Internal(fmt::format_string<Args...> f, Args&&... args) {
  return {Error::Code::kInternal, fmt::format(f, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace fanout
