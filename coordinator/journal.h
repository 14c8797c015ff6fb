// Journal: what the coordinator must not forget when it is killed, in SQLite.
//
// Each accepted job (its spec and client), each task's final result and each
// job's end are written here, and committed before anything about them goes
// out (Commit() once per turn of the event loop: one transaction for all the
// turn's changes). A coordinator started on the same file resumes the jobs
// that had not ended (their finished tasks are not run again) and can replay
// a job's results to a client that comes back asking for them.
//
// WAL with synchronous=NORMAL: a commit survives the process being killed at
// any moment (the OS holds the written pages); a power cut may lose the last
// commits, whose tasks then run again. The file is opened with an exclusive
// lock, so two coordinators cannot share one. ":memory:" keeps it in memory
// (replay works, nothing survives a restart).
//
//   auto journal = Journal::Open("fanout-coordinator.db");
//   for (JournaledJob& job : (*journal)->Unfinished()) scheduler.Restore(job, now);
//   ... scheduler runs, calling Accepted / Finished / Completed ...
//   (*journal)->Commit();  // then send
#pragma once

#include <sqlite3.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/codec.h"
#include "common/result.h"
#include "common/sqlite.h"

namespace fanout::coordinator {

struct JournaledJob {
  std::string id;
  std::string client;  // the routing id it came from
  pb::JobSpec spec;
  int64_t accepted_us = 0;
  std::vector<pb::Result> results;  // tasks that had finished, by index
  std::optional<pb::JobDone> done;  // once it ended
  int64_t ended_us = 0;
};

class Journal {
 public:
  static Result<std::unique_ptr<Journal>> Open(const std::string& path);
  ~Journal();

  void Accepted(const std::string& id, const std::string& client, const pb::JobSpec& spec,
                int64_t accepted_us);
  // Gathered in memory and written at the next Commit (or Completed, or
  // Results), as one row for all jobs.
  void Finished(const pb::Result& result);
  void Completed(const pb::JobDone& done, int64_t now_us);
  // Makes every change since the last Commit durable. After a failure
  // (a full disk) it keeps failing: the journal is then `broken()`.
  Status Commit();
  const std::string& broken() const { return broken_; }

  // Jobs accepted and not completed, with their finished tasks' results.
  Result<std::vector<JournaledJob>> Unfinished();
  // A job's finished results, in index order; its JobDone once it ended.
  std::vector<pb::Result> Results(const std::string& job_id);
  // The last `n` results the job finished (most recent first), reading no
  // more of the log than those take.
  std::vector<pb::Result> LatestResults(const std::string& job_id, size_t n);
  std::optional<pb::JobDone> Done(const std::string& job_id);
  // A job that ended, with its results; nullopt if it did not (or is gone).
  std::optional<JournaledJob> Ended(const std::string& job_id);
  // The jobs that ended last, the most recent first (without their results).
  std::vector<JournaledJob> RecentlyEnded(size_t limit);
  // Forgets jobs that ended before `before_us`.
  void Prune(int64_t before_us);
  // Caps the file at `pages` pages: past that, writes fail as on a full disk.
  void LimitPages(int pages);

 private:
  explicit Journal(sqlite3* db) : db_(db) {}
  // Brings a journal written by an older version to this one's layout.
  static Status Upgrade(sqlite3* db);
  bool Step(Statement& statement);
  void Begin();
  // Writes the results gathered since the last call as one row.
  void WriteBatch();
  // The rowids a job's results lie between; nullopt before its first.
  std::optional<std::pair<int64_t, int64_t>> Bounds(const std::string& job_id);
  // Each of the job's results in the rows `rows` selects, until `take` says no more.
  void ReadRows(Statement& rows, const std::string& job_id,
                const std::function<bool(pb::Result&&)>& take);

  sqlite3* db_;
  bool in_transaction_ = false;
  std::string broken_;
  Statement accepted_, finished_, first_, completed_, results_, latest_, bounds_, done_;
  Statement begin_, commit_;
  std::string batch_;                          // results not yet written
  std::unordered_set<std::string> bounded_;    // running jobs whose first row is written
  std::unordered_set<std::string> unbounded_;  // jobs in batch_ not yet bounded
};

}  // namespace fanout::coordinator
