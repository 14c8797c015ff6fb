#include "ledger/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "client/local_cluster.h"

namespace fanout::ledger {
namespace {

std::unique_ptr<Store> Memory() {
  auto store = Store::Open(":memory:");
  EXPECT_TRUE(store.ok());
  return std::move(*store);
}

// A database file in a directory of its own, removed with it.
struct TempDb {
  TempDb() {
    auto made = client::TempDir::Make("ledger-test");
    EXPECT_TRUE(made.ok());
    if (made) dir = std::move(*made);
    path = dir / "ledger.db";
  }
  client::TempDir dir;
  std::string path;
};

TEST(StoreTest, ResetMakesTheArticlesBook) {
  auto store = Memory();
  ASSERT_TRUE(store->Reset("job-1", 5, 1000).ok());
  const Balances b = *store->Snapshot("job-1");
  EXPECT_EQ(b.size(), 5u);
  EXPECT_EQ(b.at("bank_1"), 1000);
  EXPECT_EQ(b.at("bank_5"), 1000);
  EXPECT_EQ(Sum(b), 5000);
}

TEST(StoreTest, OpeningAnExistingBookWithKeepExistingChangesNothing) {
  auto store = Memory();
  ASSERT_TRUE(store->Reset("job-1", 2, 100).ok());
  ASSERT_TRUE(store->Transfer("job-1", "t1", "bank_1", "bank_2", 10).ok());
  ASSERT_TRUE(store->Reset("job-1", 2, 100, /*keep_existing=*/true).ok());
  EXPECT_EQ(*store->Get("job-1", "bank_1"), 90);
  ASSERT_TRUE(store->Reset("job-1", 2, 100).ok());  // a real reset starts over
  EXPECT_EQ(*store->Get("job-1", "bank_1"), 100);
  EXPECT_FALSE(store->Applied("job-1", "t1"));
}

TEST(StoreTest, TransferMovesMoneyAndKeepsTheSum) {
  auto store = Memory();
  ASSERT_TRUE(store->Reset("job-1", 5, 1000).ok());
  auto t = store->Transfer("job-1", "job-1/1", "bank_1", "bank_2", 40);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->already_applied);
  EXPECT_EQ(*store->Get("job-1", "bank_1"), 960);
  EXPECT_EQ(*store->Get("job-1", "bank_2"), 1040);
  EXPECT_EQ(Sum(*store->Snapshot("job-1")), 5000);
}

TEST(StoreTest, ATransferIdIsAppliedOnce) {
  auto store = Memory();
  ASSERT_TRUE(store->Reset("job-1", 2, 100).ok());
  ASSERT_TRUE(store->Transfer("job-1", "t1", "bank_1", "bank_2", 10).ok());
  auto again = store->Transfer("job-1", "t1", "bank_1", "bank_2", 10);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_applied);
  EXPECT_EQ(*store->Get("job-1", "bank_1"), 90);
  EXPECT_TRUE(store->Applied("job-1", "t1"));
  EXPECT_FALSE(store->Applied("job-1", "t2"));
}

TEST(StoreTest, BadTransfersAreRejectedAndChangeNothing) {
  auto store = Memory();
  ASSERT_TRUE(store->Reset("job-1", 2, 100).ok());
  struct Case {
    std::string book, from, to;
    int64_t amount;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"job-1", "bank_1", "bank_2", 0, "amount must be positive"},
           {"job-1", "bank_1", "bank_2", -5, "amount must be positive"},
           {"job-1", "bank_1", "bank_1", 5, "to itself"},
           {"job-1", "bank_1", "bank_9", 5, "unknown account 'bank_9'"},
           {"job-1", "bank_1", "bank_2", 101, "insufficient funds: bank_1 has 100"},
           {"job-2", "bank_1", "bank_2", 5, "unknown book 'job-2'"},
       }) {
    auto t = store->Transfer(c.book, "bad-" + c.error, c.from, c.to, c.amount);
    ASSERT_FALSE(t.ok()) << c.error;
    EXPECT_NE(t.error().message.find(c.error), std::string::npos) << t.error().message;
    EXPECT_FALSE(store->Applied(c.book, "bad-" + c.error));
  }
  EXPECT_EQ(*store->Snapshot("job-1"), (Balances{{"bank_1", 100}, {"bank_2", 100}}));
}

TEST(StoreTest, BooksAreSeparate) {
  auto store = Memory();
  ASSERT_TRUE(store->Reset("a", 2, 100).ok());
  ASSERT_TRUE(store->Reset("b", 2, 100).ok());
  ASSERT_TRUE(store->Transfer("a", "x", "bank_1", "bank_2", 50).ok());
  EXPECT_EQ(*store->Get("b", "bank_1"), 100);
  EXPECT_FALSE(store->Transfer("b", "x", "bank_1", "bank_2", 50)->already_applied);
}

TEST(StoreTest, UnsafeGetAndSetLoseUpdatesWhenInterleaved) {
  // The article's lost update, step by step: both read 100, both write.
  auto store = Memory();
  ASSERT_TRUE(store->Reset("job", 2, 100).ok());
  const int64_t a = *store->Get("job", "bank_1");
  const int64_t b = *store->Get("job", "bank_1");
  ASSERT_TRUE(store->Set("job", "bank_1", a - 10).ok());
  ASSERT_TRUE(store->Set("job", "bank_1", b - 20).ok());
  EXPECT_EQ(*store->Get("job", "bank_1"), 80);  // 10 vanished
  EXPECT_FALSE(store->Set("job", "bank_1", -1).ok());
}

TEST(StoreTest, TicketsBecomeDurableOnCommit) {
  TempDb db;
  auto store = Store::Open(db.path);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto reset = (*store)->Reset("job", 2, 100);
  auto t = (*store)->Transfer("job", "t1", "bank_1", "bank_2", 1);
  EXPECT_LT((*store)->durable(), t->ticket);
  EXPECT_TRUE((*store)->HasPending());
  auto durable = (*store)->CommitPending();
  ASSERT_TRUE(durable.ok()) << durable.error().message;
  EXPECT_GE(*durable, t->ticket);
  EXPECT_FALSE((*store)->HasPending());
  // In memory, everything is durable at once.
  auto memory = Memory();
  auto r = memory->Reset("job", 1, 1);
  EXPECT_GE(memory->durable(), *r);
}

TEST(StoreTest, ReopenedFileHasEveryCommittedTransferAndItsIds) {
  TempDb db;
  const std::string& path = db.path;
  {
    auto store = Store::Open(path);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_TRUE((*store)->Reset("job", 5, 1000).ok());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE((*store)
                      ->Transfer("job", "t" + std::to_string(i), AccountName(i % 5 + 1),
                                 AccountName((i + 1) % 5 + 1), 7)
                      .ok());
    }
    ASSERT_TRUE((*store)->CommitPending().ok());
    // A change never committed (the process dies here) is not on disk.
    ASSERT_TRUE((*store)->Transfer("job", "lost", "bank_1", "bank_2", 1).ok());
  }
  auto again = Store::Open(path);
  ASSERT_TRUE(again.ok()) << again.error().message;
  const Balances b = *(*again)->Snapshot("job");
  EXPECT_EQ(Sum(b), 5000);
  EXPECT_EQ(b.at("bank_1"), 1000 - 10 * 7 + 10 * 7);
  EXPECT_TRUE((*again)->Applied("job", "t49"));
  EXPECT_FALSE((*again)->Applied("job", "lost"));
  EXPECT_TRUE((*again)->Transfer("job", "t3", "bank_4", "bank_5", 7)->already_applied);
}

TEST(StoreTest, AClosedBookRefusesChangesKeepsItsIdsAndStaysClosedOnDisk) {
  TempDb db;
  const std::string& path = db.path;
  {
    auto store = Store::Open(path);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_TRUE((*store)->Reset("job", 5, 1000).ok());
    ASSERT_TRUE((*store)->Transfer("job", "t1", "bank_1", "bank_2", 10).ok());
    ASSERT_TRUE((*store)->Close("job").ok());
    ASSERT_TRUE((*store)->Close("job").ok()) << "closing twice is fine";
    // A transfer still in flight when its job ended moves nothing...
    Result<TransferOutcome> late = (*store)->Transfer("job", "t2", "bank_1", "bank_2", 10);
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().message, "the book 'job' is closed: its job has ended");
    EXPECT_FALSE((*store)->Set("job", "bank_1", 0).ok());
    // ...but one applied before is still answered as applied.
    EXPECT_TRUE((*store)->Transfer("job", "t1", "bank_1", "bank_2", 10)->already_applied);
    EXPECT_EQ((*store)->Get("job", "bank_2").value(), 1010);
    // Opening it again as a resumed job would leaves it closed.
    ASSERT_TRUE((*store)->Reset("job", 5, 1000, /*keep_existing=*/true).ok());
    EXPECT_TRUE((*store)->IsClosed("job"));
    ASSERT_TRUE((*store)->CommitPending().ok());
  }
  auto again = Store::Open(path);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE((*again)->IsClosed("job"));
  // A fresh Reset starts the book over, open.
  ASSERT_TRUE((*again)->Reset("job", 5, 1000).ok());
  EXPECT_FALSE((*again)->IsClosed("job"));
  EXPECT_TRUE((*again)->Transfer("job", "t2", "bank_1", "bank_2", 10).ok());
}

TEST(StoreTest, ConcurrentTransfersWithACommitterKeepTheSum) {
  TempDb db;
  auto store = Store::Open(db.path);
  ASSERT_TRUE(store.ok());
  Store& s = **store;
  ASSERT_TRUE(s.Reset("job", 5, 1000).ok());
  std::atomic<bool> done{false};
  std::thread committer([&] {
    while (!done) {
      ASSERT_TRUE(s.CommitPending().ok());
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        (void)s.Transfer("job", fmt::format("{}-{}", t, i), AccountName(i % 5 + 1),
                         AccountName((i + t + 1) % 5 + 1), i % 50 + 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  done = true;
  committer.join();
  ASSERT_TRUE(s.CommitPending().ok());
  EXPECT_EQ(s.durable(), s.last_ticket());
  EXPECT_EQ(Sum(*s.Snapshot("job")), 5000);
}

TEST(StoreTest, AnUnwritableFileIsAClearError) {
  auto store = Store::Open("/nonexistent-dir/ledger.db");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("/nonexistent-dir/ledger.db"), std::string::npos);
}

}  // namespace
}  // namespace fanout::ledger
