#include "ledger/lease.h"

#include <gtest/gtest.h>

namespace fanout::ledger {
namespace {

using std::chrono::milliseconds;

const TimePoint t0 = TimePoint{} + std::chrono::hours(1);  // a fake clock

TEST(LeaseTest, FreeLockIsGrantedAndOthersQueueInOrder) {
  LeaseLocks locks;
  ASSERT_TRUE(locks.Acquire("book", "a", milliseconds(1000), 1, t0));
  EXPECT_FALSE(locks.Acquire("book", "b", milliseconds(1000), 2, t0));
  EXPECT_FALSE(locks.Acquire("book", "c", milliseconds(1000), 3, t0));
  EXPECT_EQ(locks.Holder("book"), "a");
  EXPECT_EQ(locks.Waiting("book"), 2u);
  std::optional<LeaseLocks::Grant> next;
  EXPECT_TRUE(locks.Release("book", "a", t0 + milliseconds(10), &next));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->owner, "b");
  EXPECT_EQ(next->tag, 2u);
  EXPECT_EQ(next->expires, t0 + milliseconds(1010));  // the lease starts at the grant
  EXPECT_TRUE(locks.Release("book", "b", t0 + milliseconds(20), &next));
  EXPECT_EQ(next->owner, "c");
}

TEST(LeaseTest, BooksHaveTheirOwnLocks) {
  LeaseLocks locks;
  EXPECT_TRUE(locks.Acquire("one", "a", milliseconds(100), 1, t0));
  EXPECT_TRUE(locks.Acquire("two", "b", milliseconds(100), 2, t0));
}

TEST(LeaseTest, ADeadHoldersLeaseRunsOutAndTheNextWaiterGetsIt) {
  LeaseLocks locks;
  ASSERT_TRUE(locks.Acquire("book", "dead", milliseconds(500), 1, t0));
  EXPECT_FALSE(locks.Acquire("book", "b", milliseconds(500), 2, t0 + milliseconds(100)));
  EXPECT_EQ(locks.NextExpiry(), t0 + milliseconds(500));
  EXPECT_TRUE(locks.Expire(t0 + milliseconds(499)).empty());
  std::vector<LeaseLocks::Grant> grants = locks.Expire(t0 + milliseconds(500));
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].owner, "b");
  // The late holder's unlock is refused: it no longer held the lock.
  std::optional<LeaseLocks::Grant> next;
  EXPECT_FALSE(locks.Release("book", "dead", t0 + milliseconds(600), &next));
  EXPECT_EQ(locks.Holder("book"), "b");
}

TEST(LeaseTest, HolderRenewsAndALapsedLeaseIsFreeWithoutExpire) {
  LeaseLocks locks;
  ASSERT_TRUE(locks.Acquire("book", "a", milliseconds(100), 1, t0));
  auto renewed = locks.Acquire("book", "a", milliseconds(100), 2, t0 + milliseconds(50));
  ASSERT_TRUE(renewed);
  EXPECT_EQ(renewed->expires, t0 + milliseconds(150));
  EXPECT_TRUE(locks.Acquire("book", "b", milliseconds(100), 3, t0 + milliseconds(200)));
  EXPECT_EQ(locks.NextExpiry(), t0 + milliseconds(300));
  locks.Drop("book");
  EXPECT_EQ(locks.NextExpiry(), TimePoint::max());
}

}  // namespace
}  // namespace fanout::ledger
