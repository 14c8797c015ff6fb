// Liveness: heartbeat bookkeeping for one peer, as in the ZeroMQ guide's
// Paranoid Pirate. We send a heartbeat every `interval`; the peer is dead
// after `liveness` intervals in which nothing at all arrived from it.
//
// Pure logic: every call takes the current time, so tests use made-up times.
//
//   Liveness peer(500ms, 3, now);
//   if (peer.HeartbeatDue(now)) { send(); peer.Sent(now); }
//   if (peer.Expired(now)) reconnect();
#pragma once

#include <algorithm>

#include "common/clock.h"

namespace fanout {

class Liveness {
 public:
  Liveness(Duration interval, int liveness, TimePoint now)
      : interval_(interval), timeout_(interval * liveness), heard_(now), sent_(now) {}

  void Heard(TimePoint now) { heard_ = now; }
  void Sent(TimePoint now) { sent_ = now; }

  // At its deadline exactly, as NextDeadline() says (else a loop woken then
  // finds nothing due and wakes again at once).
  bool Expired(TimePoint now) const { return now - heard_ >= timeout_; }
  bool HeartbeatDue(TimePoint now) const { return now - sent_ >= interval_; }
  Duration Silence(TimePoint now) const { return now - heard_; }

  // The next moment something must be checked: a heartbeat or the expiry.
  TimePoint NextDeadline() const { return std::min(sent_ + interval_, heard_ + timeout_); }

 private:
  Duration interval_;
  Duration timeout_;
  TimePoint heard_;
  TimePoint sent_;
};

}  // namespace fanout
