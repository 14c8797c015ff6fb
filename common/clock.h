// Time as fanout's logic sees it.
//
// Logic that depends on time (heartbeats, back-off, leases, deadlines) takes
// `TimePoint now` as an argument instead of reading a clock, so tests drive it
// with made-up times. Only the event loops read the real clock, through Now().
#pragma once

#include <chrono>
#include <cstdint>

namespace fanout {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using Duration = SteadyClock::duration;
using std::chrono::microseconds;
using std::chrono::milliseconds;

inline TimePoint Now() { return SteadyClock::now(); }

// Microseconds since the Unix epoch: comparable across processes and hosts
// (up to clock offsets), used for the timestamps that travel in messages.
inline int64_t UnixMicros() {
  return std::chrono::duration_cast<microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline double ToMillis(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace fanout
