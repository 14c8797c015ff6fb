// Backoff: exponential back-off with jitter for reconnects and retries.
//
// The n-th delay is min(max, initial * 2^n) scaled by a random factor in
// [0.5, 1.0), so peers that failed together do not retry together. The random
// source is seeded by the caller, which makes the sequence testable.
//
//   Backoff backoff(100ms, 5s, seed);
//   Duration wait = backoff.Next();   // ~50-100 ms, then ~100-200 ms, ...
//   backoff.Reset();                  // after a success
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

#include "common/clock.h"

namespace fanout {

class Backoff {
 public:
  Backoff(Duration initial, Duration max, uint64_t seed)
      : initial_(initial), max_(max), rng_(seed) {}

  Duration Next() {
    Duration base = initial_;
    for (int i = 0; i < attempts_ && base < max_; ++i) base *= 2;
    base = std::min(base, max_);
    ++attempts_;
    const double factor = std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
    return std::chrono::duration_cast<Duration>(base * factor);
  }

  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  Duration initial_;
  Duration max_;
  std::mt19937_64 rng_;
  int attempts_ = 0;
};

}  // namespace fanout
