// Rng: the simulator's only source of randomness, a function of its seed
// alone (splitmix64), so a run replays exactly on any machine.
#pragma once

#include <cstdint>
#include <vector>

#include "common/clock.h"
#include "common/text.h"

namespace fanout::sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(Mix64(seed)) {}

  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return Mix64(state_);
  }
  // In [lo, hi], both included.
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }
  // True with probability p.
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }
  Duration Millis(uint64_t lo, uint64_t hi) { return milliseconds(Between(lo, hi)); }
  Duration Micros(uint64_t lo, uint64_t hi) { return microseconds(Between(lo, hi)); }
  template <typename T>
  T& Pick(std::vector<T>& v) {
    return v[Next() % v.size()];
  }

 private:
  uint64_t state_;
};

}  // namespace fanout::sim
