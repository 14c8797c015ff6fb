// The CPU-bound task of the article.
#pragma once

#include <cstdint>
#include <stop_token>

namespace fanout::jobs::math {

// x = start; repeat `iterations` times: x = x^4; x = x^0.25; x = x^2;
// x = x^0.5; x += 1. Every power goes through libm's pow(), as CPython's
// float ** does, so results are bit-identical to the Python original:
// DoMath(n, 2'000'000) == 2000000.0 + n for n in 1..20. Returns early, with
// the value so far, once `stop` is requested (checked every 65,536 turns).
double DoMath(double start, uint64_t iterations, std::stop_token stop = {});

}  // namespace fanout::jobs::math
