#include "jobs/math/loop.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace fanout::jobs::math {
namespace {

// Values printed by CPython 3.11 (float.hex()) running the same loop with
// `x = x ** 4` and so on, the "Python original".
struct Golden {
  double start;
  uint64_t iterations;
  const char* hex;
};

double FromHex(const char* hex) { return std::strtod(hex, nullptr); }

TEST(MathTest, TheArticlesTwentyRunsAreExact) {
  for (int n = 1; n <= 20; ++n) {
    EXPECT_EQ(DoMath(n, 2'000'000), 2'000'000.0 + n) << "start " << n;
  }
}

TEST(MathTest, BitIdenticalToPythonOnAwkwardInputs) {
  const Golden cases[] = {
      {0.1, 1000, "0x1.f40cccccccccdp+9"},
      {3.7, 5000, "0x1.38bb333333333p+12"},
      {123456.789, 20000, "0x1.183064fdf3b64p+17"},
      {1e-3, 777, "0x1.848020c49ba5ep+9"},
      {2.5e7, 3000, "0x1.7d83f80000000p+24"},
      {-2.0, 3, "0x1.4000000000000p+2"},
      {0, 0, "0x0.0p+0"},
      {7, 0, "0x1.c000000000000p+2"},
  };
  for (const Golden& g : cases) {
    EXPECT_EQ(DoMath(g.start, g.iterations), FromHex(g.hex))
        << "start " << g.start << " iterations " << g.iterations;
  }
}

}  // namespace
}  // namespace fanout::jobs::math
