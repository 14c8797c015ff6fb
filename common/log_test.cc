#include "common/log.h"

#include <gtest/gtest.h>

namespace fanout {
namespace {

using std::chrono::milliseconds;

TEST(LogLimiterTest, LetsAFewLinesASecondThroughAndCountsTheRest) {
  LogLimiter limiter(3);
  TimePoint now{};
  int logged = 0;
  for (int i = 0; i < 1000; ++i) logged += limiter.Allow(now).has_value();
  EXPECT_EQ(logged, 3);
  now += milliseconds(999);
  EXPECT_FALSE(limiter.Allow(now).has_value()) << "still the same second";
  now += milliseconds(1);
  std::optional<uint64_t> next = limiter.Allow(now);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 998u) << "the first line of a new second says how many were left out";
  EXPECT_EQ(limiter.Allow(now), std::optional<uint64_t>(0));
}

TEST(LogLimiterTest, SkippedNoteIsEmptyWhenNothingWasLeftOut) {
  EXPECT_EQ(SkippedNote(0), "");
  EXPECT_EQ(SkippedNote(42), " (and 42 more like it before)");
}

}  // namespace
}  // namespace fanout
