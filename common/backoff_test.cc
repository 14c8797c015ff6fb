#include "common/backoff.h"

#include <gtest/gtest.h>

namespace fanout {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesWithinJitterAndCaps) {
  Backoff backoff(milliseconds(100), milliseconds(1000), 7);
  const int64_t bases[] = {100, 200, 400, 800, 1000, 1000};
  for (int64_t base : bases) {
    const auto d = std::chrono::duration_cast<milliseconds>(backoff.Next()).count();
    EXPECT_GE(d, base / 2);
    EXPECT_LT(d, base);
  }
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff backoff(milliseconds(100), milliseconds(1000), 7);
  for (int i = 0; i < 5; ++i) backoff.Next();
  backoff.Reset();
  EXPECT_LT(backoff.Next(), milliseconds(100));
}

TEST(BackoffTest, SameSeedSameSequenceOtherSeedOtherSequence) {
  Backoff a(milliseconds(100), milliseconds(1000), 1), b(milliseconds(100), milliseconds(1000), 1);
  Backoff c(milliseconds(100), milliseconds(1000), 2);
  bool differs = false;
  for (int i = 0; i < 5; ++i) {
    const Duration da = a.Next();
    EXPECT_EQ(da, b.Next());
    differs |= da != c.Next();
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace fanout
