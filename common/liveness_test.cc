#include "common/liveness.h"

#include <gtest/gtest.h>

namespace fanout {
namespace {

using std::chrono::milliseconds;

TEST(LivenessTest, PeerExpiresAfterThreeSilentIntervals) {
  const TimePoint t0{};
  Liveness peer(milliseconds(500), 3, t0);
  EXPECT_FALSE(peer.Expired(t0 + milliseconds(1499)));
  EXPECT_TRUE(peer.Expired(t0 + milliseconds(1500)));
  EXPECT_EQ(peer.NextDeadline(), t0 + milliseconds(500)) << "the first heartbeat";
}

TEST(LivenessTest, AnyMessageKeepsPeerAlive) {
  const TimePoint t0{};
  Liveness peer(milliseconds(500), 3, t0);
  peer.Heard(t0 + milliseconds(1400));
  EXPECT_FALSE(peer.Expired(t0 + milliseconds(2899)));
  EXPECT_TRUE(peer.Expired(t0 + milliseconds(2900)));
}

TEST(LivenessTest, HeartbeatDueEveryInterval) {
  const TimePoint t0{};
  Liveness peer(milliseconds(500), 3, t0);
  EXPECT_FALSE(peer.HeartbeatDue(t0 + milliseconds(499)));
  EXPECT_TRUE(peer.HeartbeatDue(t0 + milliseconds(500)));
  peer.Sent(t0 + milliseconds(500));
  EXPECT_FALSE(peer.HeartbeatDue(t0 + milliseconds(999)));
  EXPECT_EQ(peer.NextDeadline(), t0 + milliseconds(1000));
}

}  // namespace
}  // namespace fanout
