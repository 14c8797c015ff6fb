// The ledger's books: accounts and the ids of applied transfers, in memory
// under one mutex, written through to SQLite (WAL, synchronous=FULL).
//
// Changes are applied in memory at once and queued as writes; each change
// gets a ticket. CommitPending() writes everything queued in one transaction
// (group commit: one fsync for every transfer that arrived meanwhile), and a
// reply that reports a change may only leave once its ticket is durable
// (durable() >= ticket). With the path ":memory:" nothing is written and
// every ticket is durable at once.
//
//   auto store = Store::Open("ledger.db");
//   (*store)->Reset("job-7", 5, 1000);
//   auto t = (*store)->Transfer("job-7", "job-7/3", "bank_1", "bank_2", 40);
//   (*store)->CommitPending();  // now t->ticket is durable: answer
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"

namespace fanout::ledger {

inline constexpr uint32_t kMaxAccounts = 10'000;

// "bank_1" ... "bank_N", as the article names them.
std::string AccountName(uint32_t i);

using Balances = std::map<std::string, int64_t>;

// The money in a book: what no transfer may change.
int64_t Sum(const Balances& balances);

struct TransferOutcome {
  bool already_applied = false;  // this transfer_id was applied before: nothing changed now
  uint64_t ticket = 0;           // durable once durable() >= ticket
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();

  // Creates `book` with accounts bank_1..bank_N at `initial` each, or
  // starts it over if it exists (unless `keep_existing`). Returns the ticket.
  Result<uint64_t> Reset(const std::string& book, uint32_t accounts, int64_t initial,
                         bool keep_existing = false);
  Result<int64_t> Get(const std::string& book, const std::string& account) const;
  // Seals `book`: every later Set or Transfer on it is refused (Get and
  // Snapshot still answer). Idempotent. Returns the ticket.
  Result<uint64_t> Close(const std::string& book);
  bool IsClosed(const std::string& book) const;
  // The unsafe primitive: overwrites a balance (never below zero).
  Result<uint64_t> Set(const std::string& book, const std::string& account, int64_t balance);
  // Moves `amount` from one account to the other, once per transfer_id.
  // A bad transfer (amount <= 0, unknown book or account, the same account
  // twice, an overdraft, a sealed book) is an error and changes nothing.
  Result<TransferOutcome> Transfer(const std::string& book, const std::string& transfer_id,
                                   const std::string& from, const std::string& to, int64_t amount);
  Result<Balances> Snapshot(const std::string& book) const;
  bool HasBook(const std::string& book) const;
  // Whether a transfer id has been applied in `book` (for tests and tools).
  bool Applied(const std::string& book, const std::string& transfer_id) const;

  // Writes every queued change in one transaction; returns the highest
  // durable ticket. One committer at a time. A write that fails leaves the
  // store refusing all further changes: memory and disk may differ, and
  // only a restart (which reloads from disk) is safe.
  Result<uint64_t> CommitPending();
  uint64_t durable() const;
  uint64_t last_ticket() const;
  bool HasPending() const;

 private:
  struct Upsert {
    std::string book, account;
    int64_t balance;
  };
  struct MarkApplied {
    std::string book, transfer_id;
  };
  struct DropBook {
    std::string book;
  };
  struct SealBook {
    std::string book;
  };
  using Write = std::variant<Upsert, MarkApplied, DropBook, SealBook>;
  struct Book {
    Balances balances;
    std::unordered_set<std::string> applied;
    bool closed = false;
  };

  explicit Store(sqlite3* db) : db_(db) {}
  Status Load();
  Status WriteBatch(const std::vector<Write>& batch);
  Status Usable() const REQUIRES(mu_);
  uint64_t Queue(std::vector<Write> writes) REQUIRES(mu_);
  // The book, if it exists and takes changes.
  Result<Book*> Writable(const std::string& book) REQUIRES(mu_);

  sqlite3* const db_;  // null for ":memory:"; used by Load and the committer only
  Mutex commit_mu_;    // one committer at a time
  mutable Mutex mu_;
  std::unordered_map<std::string, Book> books_ GUARDED_BY(mu_);
  std::vector<Write> pending_ GUARDED_BY(mu_);
  uint64_t last_ticket_ GUARDED_BY(mu_) = 0;
  uint64_t durable_ GUARDED_BY(mu_) = 0;
  std::string broken_ GUARDED_BY(mu_);  // why changes are refused, after a failed write
};

}  // namespace fanout::ledger
