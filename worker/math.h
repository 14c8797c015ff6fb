// The CPU-bound task of the article.
#pragma once

#include <cstdint>

namespace fanout::worker {

// x = start; repeat `iterations` times: x = x^4; x = x^0.25; x = x^2;
// x = x^0.5; x += 1. Every power goes through libm's pow(), as CPython's
// float ** does, so results are bit-identical to the Python original:
// DoMath(n, 2'000'000) == 2000000.0 + n for n in 1..20.
double DoMath(double start, uint64_t iterations);

}  // namespace fanout::worker
