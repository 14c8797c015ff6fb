#include "coordinator/journal.h"

#include <spdlog/spdlog.h>

#include <functional>
#include <map>

namespace fanout::coordinator {

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    Status s = Unavailable("cannot open the journal {}: {}", path,
                           db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return s.error();
  }
  std::unique_ptr<Journal> journal(new Journal(db));
  for (const char* sql :
       {"PRAGMA locking_mode=EXCLUSIVE", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
        // first_result and last_result bound the rowids of `results` that
        // may hold a job's results (NULL: none yet; no upper one while it runs).
        "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, client BLOB NOT NULL, spec BLOB "
        "NOT NULL, accepted_us INTEGER NOT NULL, done BLOB, ended_us INTEGER, first_result "
        "INTEGER, last_result INTEGER)",
        // A log of results in commit order: each row holds the results of
        // every job finished in one turn of the loop (one insert per commit,
        // however many jobs run), each as a 4-byte little-endian length and
        // a serialized Result; `job` is '*' (an older journal's rows name
        // their one job). A job's results are found between its bounds; the
        // log is pruned from its start. No index: one on `job` cost a page
        // write per running job per commit.
        "CREATE TABLE IF NOT EXISTS results (job TEXT NOT NULL, batch BLOB NOT NULL)",
        // Takes the exclusive lock now rather than at the first write.
        "BEGIN EXCLUSIVE", "COMMIT"}) {
    if (Status s = Exec(db, sql); !s) {
      const bool locked =
          sqlite3_errcode(db) == SQLITE_BUSY || sqlite3_errcode(db) == SQLITE_LOCKED;
      if (locked) return Unavailable("the journal {} is in use by another coordinator", path);
      return Unavailable("the journal {}: {}", path, s.error().message);
    }
  }
  if (Status s = Upgrade(db); !s) return Unavailable("the journal {}: {}", path, s.error().message);
  journal->accepted_ = Statement(
      db, "INSERT OR REPLACE INTO jobs (id, client, spec, accepted_us) VALUES (?1, ?2, ?3, ?4)");
  journal->finished_ = Statement(db, "INSERT INTO results (job, batch) VALUES (?1, ?2)");
  // Prepared once: a transaction a loop turn, each parsed anew cost ~7,000 instructions.
  journal->begin_ = Statement(db, "BEGIN");
  journal->commit_ = Statement(db, "COMMIT");
  journal->first_ =
      Statement(db, "UPDATE jobs SET first_result = coalesce(first_result, ?2) WHERE id = ?1");
  journal->completed_ =
      Statement(db,
                "UPDATE jobs SET done = ?2, ended_us = ?3, last_result = (SELECT max(rowid) FROM "
                "results) WHERE id = ?1");
  journal->results_ = Statement(db,
                                "SELECT batch FROM results WHERE rowid BETWEEN ?2 AND ?3 AND job "
                                "IN (?1, '*') ORDER BY rowid");
  journal->latest_ = Statement(db,
                               "SELECT batch FROM results WHERE rowid BETWEEN ?2 AND ?3 AND job "
                               "IN (?1, '*') ORDER BY rowid DESC");
  journal->bounds_ = Statement(db, "SELECT first_result, last_result FROM jobs WHERE id = ?1");
  journal->done_ = Statement(db, "SELECT done FROM jobs WHERE id = ?1 AND done IS NOT NULL");
  for (const Statement* s :
       {&journal->accepted_, &journal->finished_, &journal->first_, &journal->completed_,
        &journal->results_, &journal->latest_, &journal->bounds_, &journal->done_, &journal->begin_,
        &journal->commit_}) {
    if (!*s) return Internal("the journal {}: {}", path, sqlite3_errmsg(db));
  }
  return journal;
}

Journal::~Journal() {
  if ((in_transaction_ || !batch_.empty()) && !Commit())
    spdlog::error("journal: the last changes are lost: {}", broken_);
  for (Statement* s : {&accepted_, &finished_, &first_, &completed_, &results_, &latest_, &bounds_,
                       &done_, &begin_, &commit_}) {
    *s = Statement();
  }
  sqlite3_close(db_);
}

void Journal::Begin() {
  if (in_transaction_ || !broken_.empty()) return;
  in_transaction_ = Step(begin_);
}

bool Journal::Step(Statement& statement) {
  const int rc = sqlite3_step(statement.get());
  sqlite3_reset(statement.get());
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return true;
  if (broken_.empty()) broken_ = sqlite3_errmsg(db_);
  return false;
}

void Journal::Accepted(const std::string& id, const std::string& client, const pb::JobSpec& spec,
                       int64_t accepted_us) {
  Begin();
  if (!broken_.empty()) return;
  Bind(accepted_.get(), 1, id);
  BindBlob(accepted_.get(), 2, client);
  BindBlob(accepted_.get(), 3, spec.SerializeAsString());
  sqlite3_bind_int64(accepted_.get(), 4, accepted_us);
  Step(accepted_);
}

void Journal::Finished(const pb::Result& result) {
  const size_t size = result.ByteSizeLong();
  const size_t at = batch_.size();
  batch_.resize(at + 4 + size);
  for (int i = 0; i < 4; ++i) batch_[at + i] = static_cast<char>((size >> (8 * i)) & 0xff);
  result.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(batch_.data() + at + 4));
  if (!bounded_.contains(result.job_id())) unbounded_.insert(result.job_id());
}

void Journal::WriteBatch() {
  if (batch_.empty()) return;
  Begin();
  if (!broken_.empty()) return;
  Bind(finished_.get(), 1, std::string("*"));
  BindBlob(finished_.get(), 2, batch_);
  batch_.clear();
  if (!Step(finished_)) return;
  // A job's first row is its lower bound (once per job and coordinator).
  const int64_t row = sqlite3_last_insert_rowid(db_);
  for (const std::string& job : unbounded_) {
    Bind(first_.get(), 1, job);
    sqlite3_bind_int64(first_.get(), 2, row);
    Step(first_);
    bounded_.insert(job);
  }
  unbounded_.clear();
}

void Journal::Completed(const pb::JobDone& done, int64_t now_us) {
  WriteBatch();  // its last results first
  Begin();
  if (!broken_.empty()) return;
  Bind(completed_.get(), 1, done.job_id());
  BindBlob(completed_.get(), 2, done.SerializeAsString());
  sqlite3_bind_int64(completed_.get(), 3, now_us);
  Step(completed_);
  bounded_.erase(done.job_id());
}

Status Journal::Commit() {
  WriteBatch();
  if (!broken_.empty()) return Unavailable("the journal cannot be written: {}", broken_);
  if (!in_transaction_) return {};
  in_transaction_ = false;
  if (!Step(commit_)) {
    (void)Exec(db_, "ROLLBACK");  // whatever it says, the journal is broken
    return Unavailable("the journal cannot be written: {}", broken_);
  }
  return {};
}

Result<std::vector<JournaledJob>> Journal::Unfinished() {
  Statement jobs(db_, "SELECT id, client, spec, accepted_us FROM jobs WHERE done IS NULL");
  if (!jobs) return Internal("the journal: {}", sqlite3_errmsg(db_));
  std::vector<JournaledJob> out;
  while (sqlite3_step(jobs.get()) == SQLITE_ROW) {
    JournaledJob job;
    job.id = Text(jobs.get(), 0);
    job.client = Text(jobs.get(), 1);
    job.accepted_us = sqlite3_column_int64(jobs.get(), 3);
    if (!job.spec.ParseFromString(Text(jobs.get(), 2))) {
      spdlog::warn("journal: job {} has an unreadable spec; skipped", job.id);
      continue;
    }
    job.results = Results(job.id);
    out.push_back(std::move(job));
  }
  return out;
}

std::optional<std::pair<int64_t, int64_t>> Journal::Bounds(const std::string& job_id) {
  WriteBatch();  // so what this turn finished is included
  // Its rows lie between its bounds; none yet without a lower one.
  Bind(bounds_.get(), 1, job_id);
  const bool found = sqlite3_step(bounds_.get()) == SQLITE_ROW &&
                     sqlite3_column_type(bounds_.get(), 0) != SQLITE_NULL;
  const int64_t first = found ? sqlite3_column_int64(bounds_.get(), 0) : 0;
  const int64_t last = found && sqlite3_column_type(bounds_.get(), 1) != SQLITE_NULL
                           ? sqlite3_column_int64(bounds_.get(), 1)
                           : INT64_MAX;
  sqlite3_reset(bounds_.get());
  if (!found) return std::nullopt;
  return std::pair{first, last};
}

void Journal::ReadRows(Statement& rows, const std::string& job_id,
                       const std::function<bool(pb::Result&&)>& take) {
  const std::optional<std::pair<int64_t, int64_t>> bounds = Bounds(job_id);
  if (!bounds) return;
  Bind(rows.get(), 1, job_id);
  sqlite3_bind_int64(rows.get(), 2, bounds->first);
  sqlite3_bind_int64(rows.get(), 3, bounds->second);
  bool more = true;
  while (more && sqlite3_step(rows.get()) == SQLITE_ROW) {
    const std::string batch = Text(rows.get(), 0);
    for (size_t at = 0; more && at + 4 <= batch.size();) {
      size_t size = 0;
      for (int i = 0; i < 4; ++i) size |= size_t{static_cast<uint8_t>(batch[at + i])} << (8 * i);
      if (at + 4 + size > batch.size()) break;  // torn: cannot happen inside a commit
      pb::Result result;
      if (result.ParseFromArray(batch.data() + at + 4, static_cast<int>(size)) &&
          result.job_id() == job_id) {
        more = take(std::move(result));
      }
      at += 4 + size;
    }
  }
  sqlite3_reset(rows.get());
}

std::vector<pb::Result> Journal::Results(const std::string& job_id) {
  std::map<uint32_t, pb::Result> by_index;
  ReadRows(results_, job_id, [&](pb::Result&& result) {
    by_index.try_emplace(result.index(), std::move(result));  // the first one wins
    return true;
  });
  std::vector<pb::Result> out;
  out.reserve(by_index.size());
  for (auto& [index, result] : by_index) out.push_back(std::move(result));
  return out;
}

std::vector<pb::Result> Journal::LatestResults(const std::string& job_id, size_t n) {
  std::vector<pb::Result> out;
  if (n == 0) return out;
  ReadRows(latest_, job_id, [&](pb::Result&& result) {
    out.push_back(std::move(result));
    return out.size() < n;
  });
  return out;
}

std::optional<pb::JobDone> Journal::Done(const std::string& job_id) {
  std::optional<pb::JobDone> done;
  Bind(done_.get(), 1, job_id);
  if (sqlite3_step(done_.get()) == SQLITE_ROW) {
    done.emplace();
    if (!done->ParseFromString(Text(done_.get(), 0))) done.reset();
  }
  sqlite3_reset(done_.get());
  return done;
}

std::optional<JournaledJob> Journal::Ended(const std::string& job_id) {
  WriteBatch();
  Statement row(
      db_, "SELECT spec, accepted_us, done, ended_us FROM jobs WHERE id = ?1 AND done IS NOT NULL");
  if (!row) return std::nullopt;
  Bind(row.get(), 1, job_id);
  if (sqlite3_step(row.get()) != SQLITE_ROW) return std::nullopt;
  JournaledJob job;
  job.id = job_id;
  job.accepted_us = sqlite3_column_int64(row.get(), 1);
  job.ended_us = sqlite3_column_int64(row.get(), 3);
  job.done.emplace();
  if (!job.spec.ParseFromString(Text(row.get(), 0)) ||
      !job.done->ParseFromString(Text(row.get(), 2))) {
    return std::nullopt;
  }
  job.results = Results(job_id);
  return job;
}

std::vector<JournaledJob> Journal::RecentlyEnded(size_t limit) {
  std::vector<JournaledJob> out;
  Statement rows(db_,
                 "SELECT id, spec, accepted_us, done, ended_us FROM jobs WHERE done IS NOT NULL "
                 "ORDER BY ended_us DESC LIMIT ?1");
  if (!rows) return out;
  sqlite3_bind_int64(rows.get(), 1, static_cast<int64_t>(limit));
  while (sqlite3_step(rows.get()) == SQLITE_ROW) {
    JournaledJob job;
    job.id = Text(rows.get(), 0);
    job.accepted_us = sqlite3_column_int64(rows.get(), 2);
    job.ended_us = sqlite3_column_int64(rows.get(), 4);
    job.done.emplace();
    if (!job.spec.ParseFromString(Text(rows.get(), 1)) ||
        !job.done->ParseFromString(Text(rows.get(), 3))) {
      continue;
    }
    out.push_back(std::move(job));
  }
  return out;
}

void Journal::LimitPages(int pages) {
  const std::string sql = fmt::format("PRAGMA max_page_count={}", pages);
  if (Status s = Exec(db_, sql.c_str()); !s) broken_ = s.error().message;
}

void Journal::Prune(int64_t before_us) {
  Begin();
  if (!broken_.empty()) return;
  Statement jobs(db_, "DELETE FROM jobs WHERE ended_us < ?1");
  sqlite3_bind_int64(jobs.get(), 1, before_us);
  Step(jobs);
  // The log's rows before any kept job's first are no one's.
  Statement results(db_,
                    "DELETE FROM results WHERE rowid < coalesce((SELECT min(first_result) FROM "
                    "jobs), (SELECT max(rowid) + 1 FROM results))");
  Step(results);
}

Status Journal::Upgrade(sqlite3* db) {
  // A journal written before jobs had bounds: every job's rows may be
  // anywhere (0 to the end), and the index it had goes.
  {
    Statement columns(db,
                      "SELECT count(*) FROM pragma_table_info('jobs') WHERE name = 'first_result'");
    if (!columns || sqlite3_step(columns.get()) != SQLITE_ROW) {
      return Internal("{}", sqlite3_errmsg(db));
    }
    if (sqlite3_column_int(columns.get(), 0) == 1) return {};
  }  // finalized: a running statement locks the tables against the changes below
  for (const char* sql :
       {"ALTER TABLE jobs ADD COLUMN first_result INTEGER",
        "ALTER TABLE jobs ADD COLUMN last_result INTEGER", "UPDATE jobs SET first_result = 0",
        "UPDATE jobs SET last_result = 9223372036854775807 WHERE done IS NOT NULL",
        "DROP INDEX IF EXISTS results_by_job"}) {
    if (Status s = Exec(db, sql); !s) return s;
  }
  return {};
}

}  // namespace fanout::coordinator
