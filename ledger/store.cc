#include "ledger/store.h"

#include <fmt/format.h>

#include "common/sqlite.h"

namespace fanout::ledger {

std::string AccountName(uint32_t i) { return fmt::format("bank_{}", i); }

int64_t Sum(const Balances& balances) {
  int64_t sum = 0;
  for (const auto& [account, balance] : balances) sum += balance;
  return sum;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  if (path == ":memory:") return std::unique_ptr<Store>(new Store(nullptr));
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    Status s = Unavailable("cannot open the ledger database {}: {}", path,
                           db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return s.error();
  }
  std::unique_ptr<Store> store(new Store(db));
  // The file is this ledger's alone: a second one on it stops here.
  for (const char* sql :
       {"PRAGMA locking_mode=EXCLUSIVE", "PRAGMA journal_mode=WAL", "BEGIN EXCLUSIVE", "COMMIT"}) {
    if (Status s = Exec(db, sql); !s) {
      if (sqlite3_errcode(db) == SQLITE_BUSY || sqlite3_errcode(db) == SQLITE_LOCKED) {
        return Unavailable("the ledger database {} is in use by another ledger", path);
      }
      return Unavailable("{}: {}", path, s.error().message);
    }
  }
  for (const char* sql : {"PRAGMA synchronous=FULL",
                          "CREATE TABLE IF NOT EXISTS accounts (book TEXT NOT NULL, account TEXT "
                          "NOT NULL, balance INTEGER NOT NULL, PRIMARY KEY (book, account)) "
                          "WITHOUT ROWID",
                          "CREATE TABLE IF NOT EXISTS transfers (book TEXT NOT NULL, transfer_id "
                          "TEXT NOT NULL, PRIMARY KEY (book, transfer_id)) WITHOUT ROWID",
                          "CREATE TABLE IF NOT EXISTS closed_books (book TEXT PRIMARY KEY) "
                          "WITHOUT ROWID"}) {
    if (Status s = Exec(db, sql); !s) return Unavailable("{}: {}", path, s.error().message);
  }
  if (Status s = store->Load(); !s) return s.error();
  return store;
}

Store::~Store() {
  if (db_) sqlite3_close(db_);
}

Status Store::Load() {
  MutexLock lock(mu_);
  Statement accounts(db_, "SELECT book, account, balance FROM accounts");
  Statement transfers(db_, "SELECT book, transfer_id FROM transfers");
  Statement closed(db_, "SELECT book FROM closed_books");
  if (!accounts || !transfers || !closed) return Internal("sqlite: {}", sqlite3_errmsg(db_));
  while (sqlite3_step(accounts.get()) == SQLITE_ROW) {
    books_[Text(accounts.get(), 0)].balances[Text(accounts.get(), 1)] =
        sqlite3_column_int64(accounts.get(), 2);
  }
  while (sqlite3_step(transfers.get()) == SQLITE_ROW) {
    books_[Text(transfers.get(), 0)].applied.insert(Text(transfers.get(), 1));
  }
  while (sqlite3_step(closed.get()) == SQLITE_ROW) books_[Text(closed.get(), 0)].closed = true;
  return {};
}

Status Store::Usable() const {
  if (!broken_.empty())
    return Unavailable("ledger storage failed ({}); restart the ledger", broken_);
  return {};
}

uint64_t Store::Queue(std::vector<Write> writes) {
  ++last_ticket_;
  if (db_ == nullptr) {
    durable_ = last_ticket_;  // nothing to write
  } else {
    for (Write& w : writes) pending_.push_back(std::move(w));
  }
  return last_ticket_;
}

Result<uint64_t> Store::Reset(const std::string& book, uint32_t accounts, int64_t initial,
                              bool keep_existing) {
  if (book.empty()) return InvalidArgument("a book needs a name");
  if (accounts < 1 || accounts > kMaxAccounts) {
    return InvalidArgument("accounts must be between 1 and {} (got {})", kMaxAccounts, accounts);
  }
  if (initial < 0) return InvalidArgument("initial balance must not be negative ({})", initial);
  MutexLock lock(mu_);
  if (Status s = Usable(); !s) return s.error();
  if (keep_existing && books_.contains(book)) return last_ticket_;
  Book& b = books_[book];
  b = Book{};
  std::vector<Write> writes = {DropBook{book}};
  for (uint32_t i = 1; i <= accounts; ++i) {
    b.balances[AccountName(i)] = initial;
    writes.push_back(Upsert{book, AccountName(i), initial});
  }
  return Queue(std::move(writes));
}

Result<Store::Book*> Store::Writable(const std::string& book) {
  auto b = books_.find(book);
  if (b == books_.end()) return InvalidArgument("unknown book '{}'", book);
  if (b->second.closed) {
    return InvalidArgument("the book '{}' is closed: its job has ended", book);
  }
  return &b->second;
}

Result<uint64_t> Store::Close(const std::string& book) {
  MutexLock lock(mu_);
  if (Status s = Usable(); !s) return s.error();
  auto b = books_.find(book);
  if (b == books_.end()) return InvalidArgument("unknown book '{}'", book);
  if (b->second.closed) return last_ticket_;  // durable once the first was
  b->second.closed = true;
  return Queue({SealBook{book}});
}

bool Store::IsClosed(const std::string& book) const {
  MutexLock lock(mu_);
  auto b = books_.find(book);
  return b != books_.end() && b->second.closed;
}

Result<int64_t> Store::Get(const std::string& book, const std::string& account) const {
  MutexLock lock(mu_);
  auto b = books_.find(book);
  if (b == books_.end()) return InvalidArgument("unknown book '{}'", book);
  auto a = b->second.balances.find(account);
  if (a == b->second.balances.end()) return InvalidArgument("unknown account '{}'", account);
  return a->second;
}

Result<uint64_t> Store::Set(const std::string& book, const std::string& account, int64_t balance) {
  if (balance < 0) return InvalidArgument("a balance cannot be negative ({})", balance);
  MutexLock lock(mu_);
  if (Status s = Usable(); !s) return s.error();
  Result<Book*> b = Writable(book);
  if (!b) return b.error();
  auto a = (*b)->balances.find(account);
  if (a == (*b)->balances.end()) return InvalidArgument("unknown account '{}'", account);
  a->second = balance;
  return Queue({Upsert{book, account, balance}});
}

Result<TransferOutcome> Store::Transfer(const std::string& book, const std::string& transfer_id,
                                        const std::string& from, const std::string& to,
                                        int64_t amount) {
  if (transfer_id.empty()) return InvalidArgument("a transfer needs a transfer_id");
  MutexLock lock(mu_);
  if (Status s = Usable(); !s) return s.error();
  auto b = books_.find(book);
  if (b == books_.end()) return InvalidArgument("unknown book '{}'", book);
  Book& bk = b->second;
  if (bk.applied.contains(transfer_id)) {
    // Answered again (a lost reply, a re-run task): durable once the first was.
    return TransferOutcome{.already_applied = true, .ticket = last_ticket_};
  }
  if (bk.closed) return InvalidArgument("the book '{}' is closed: its job has ended", book);
  if (amount <= 0) return InvalidArgument("amount must be positive (got {})", amount);
  if (from == to) return InvalidArgument("cannot transfer from {} to itself", from);
  auto src = bk.balances.find(from);
  auto dst = bk.balances.find(to);
  if (src == bk.balances.end()) return InvalidArgument("unknown account '{}'", from);
  if (dst == bk.balances.end()) return InvalidArgument("unknown account '{}'", to);
  if (src->second < amount) {
    return InvalidArgument("insufficient funds: {} has {}, transfer of {}", from, src->second,
                           amount);
  }
  src->second -= amount;
  dst->second += amount;
  bk.applied.insert(transfer_id);
  const uint64_t ticket = Queue({Upsert{book, from, src->second}, Upsert{book, to, dst->second},
                                 MarkApplied{book, transfer_id}});
  return TransferOutcome{.already_applied = false, .ticket = ticket};
}

Result<Balances> Store::Snapshot(const std::string& book) const {
  MutexLock lock(mu_);
  auto b = books_.find(book);
  if (b == books_.end()) return InvalidArgument("unknown book '{}'", book);
  return b->second.balances;
}

bool Store::HasBook(const std::string& book) const {
  MutexLock lock(mu_);
  return books_.contains(book);
}

bool Store::Applied(const std::string& book, const std::string& transfer_id) const {
  MutexLock lock(mu_);
  auto b = books_.find(book);
  return b != books_.end() && b->second.applied.contains(transfer_id);
}

Result<uint64_t> Store::CommitPending() {
  MutexLock committing(commit_mu_);
  std::vector<Write> batch;
  uint64_t upto;
  {
    MutexLock lock(mu_);
    if (Status s = Usable(); !s) return s.error();
    batch.swap(pending_);
    upto = last_ticket_;
  }
  if (!batch.empty()) {
    if (Status s = WriteBatch(batch); !s) {
      MutexLock lock(mu_);
      broken_ = s.error().message;
      return s.error();
    }
  }
  MutexLock lock(mu_);
  durable_ = std::max(durable_, upto);
  return durable_;
}

Status Store::WriteBatch(const std::vector<Write>& batch) {
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s) return s;
  Statement upsert(db_,
                   "INSERT INTO accounts (book, account, balance) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (book, account) DO UPDATE SET balance = excluded.balance");
  Statement applied(db_, "INSERT OR IGNORE INTO transfers (book, transfer_id) VALUES (?1, ?2)");
  Statement drop_accounts(db_, "DELETE FROM accounts WHERE book = ?1");
  Statement drop_transfers(db_, "DELETE FROM transfers WHERE book = ?1");
  Statement drop_closed(db_, "DELETE FROM closed_books WHERE book = ?1");
  Statement seal(db_, "INSERT OR IGNORE INTO closed_books (book) VALUES (?1)");
  auto run = [&](sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE;
  };
  bool ok = upsert && applied && drop_accounts && drop_transfers && drop_closed && seal;
  for (size_t i = 0; ok && i < batch.size(); ++i) {
    const Write& w = batch[i];
    if (const auto* u = std::get_if<Upsert>(&w)) {
      Bind(upsert.get(), 1, u->book);
      Bind(upsert.get(), 2, u->account);
      sqlite3_bind_int64(upsert.get(), 3, u->balance);
      ok = run(upsert.get());
    } else if (const auto* m = std::get_if<MarkApplied>(&w)) {
      Bind(applied.get(), 1, m->book);
      Bind(applied.get(), 2, m->transfer_id);
      ok = run(applied.get());
    } else if (const auto* d = std::get_if<DropBook>(&w)) {
      Bind(drop_accounts.get(), 1, d->book);
      Bind(drop_transfers.get(), 1, d->book);
      Bind(drop_closed.get(), 1, d->book);
      ok = run(drop_accounts.get()) && run(drop_transfers.get()) && run(drop_closed.get());
    } else if (const auto* c = std::get_if<SealBook>(&w)) {
      Bind(seal.get(), 1, c->book);
      ok = run(seal.get());
    }
  }
  if (!ok) {
    const std::string error = sqlite3_errmsg(db_);
    (void)Exec(db_, "ROLLBACK");
    return Unavailable("cannot write the ledger: {}", error);
  }
  if (Status s = Exec(db_, "COMMIT"); !s) {
    (void)Exec(db_, "ROLLBACK");
    return Unavailable("cannot commit the ledger: {}", s.error().message);
  }
  return {};
}

uint64_t Store::durable() const {
  MutexLock lock(mu_);
  return durable_;
}

uint64_t Store::last_ticket() const {
  MutexLock lock(mu_);
  return last_ticket_;
}

bool Store::HasPending() const {
  MutexLock lock(mu_);
  return !pending_.empty();
}

}  // namespace fanout::ledger
