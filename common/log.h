// Logging: spdlog on stderr, one line per event, tagged with the process.
//
//   InitLogging("worker", "info");
//   spdlog::info("task {}/{} done in {:.1f} ms", job, index, ms);
//
// Per-task lines are debug level: at 100,000 tasks/s info stays readable.
#pragma once

#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/clock.h"
#include "common/result.h"

namespace fanout {

// Sets the default logger: "2026-11-25 10:00:00.123 info  worker[4242] ...".
// `level` is trace, debug, info, warn, error or off. Colour follows the
// terminal and NO_COLOR.
Status InitLogging(std::string_view process, std::string_view level);

// At most `per_window` log lines per window (a second by default) for one
// kind of event (a flood of bad frames must not become a flood of log lines,
// or fill the disk); the first line after a quiet spell says how many were
// left out.
//
//   static LogLimiter dropped(10);
//   if (auto skipped = dropped.Allow(Now()))
//     spdlog::warn("dropped a frame: {}{}", why, SkippedNote(*skipped));
class LogLimiter {
 public:
  explicit LogLimiter(int per_window, Duration window = std::chrono::seconds(1))
      : per_window_(per_window), length_(window) {}
  // nullopt: do not log this one. Otherwise log it; the value is how many
  // were left out since the last one logged.
  std::optional<uint64_t> Allow(TimePoint now) {
    if (now - window_ >= length_) {
      window_ = now;
      in_window_ = 0;
    }
    if (in_window_ >= per_window_) {
      ++skipped_;
      return std::nullopt;
    }
    ++in_window_;
    return std::exchange(skipped_, 0);
  }

 private:
  int per_window_;
  Duration length_;
  TimePoint window_{};
  int in_window_ = 0;
  uint64_t skipped_ = 0;
};

// " (and 42 more like it)" when `skipped` > 0, else "".
std::string SkippedNote(uint64_t skipped);

// Hostname of this machine ("localhost" if it cannot be read).
std::string HostName();

// Logical cores available to this process.
unsigned Cores();

}  // namespace fanout
