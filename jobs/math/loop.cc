#include "jobs/math/loop.h"

#include <cmath>

namespace fanout::jobs::math {

// Built with -fno-builtin (see CMakeLists.txt): otherwise the compiler turns
// pow(x, 2.0) into x * x, which may round differently from libm's pow.
double DoMath(double start, uint64_t iterations, std::stop_token stop) {
  double x = start;
  for (uint64_t i = 0; i < iterations; ++i) {
    if ((i & 0xffff) == 0xffff && stop.stop_requested()) break;
    x = std::pow(x, 4.0);
    x = std::pow(x, 0.25);
    x = std::pow(x, 2.0);
    x = std::pow(x, 0.5);
    x += 1;
  }
  return x;
}

}  // namespace fanout::jobs::math
