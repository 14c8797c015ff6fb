#include "coordinator/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>

#include "client/local_cluster.h"

namespace fanout::coordinator {
namespace {

pb::JobSpec MathSpec(uint32_t count) {
  pb::JobSpec spec;
  spec.set_model(pb::THREADS);
  spec.set_count(count);
  spec.mutable_math()->set_iterations(10);
  return spec;
}

pb::Result Done(const std::string& job, uint32_t index, bool ok = true) {
  pb::Result r;
  r.set_job_id(job);
  r.set_index(index);
  r.set_attempt(1);
  r.set_ok(ok);
  r.set_number(index * 10.0);
  r.set_worker_id("w1");
  return r;
}

class JournalTest : public testing::Test {
 protected:
  void SetUp() override {
    auto dir = client::TempDir::Make("journal-test");
    ASSERT_TRUE(dir.ok());
    dir_ = std::move(*dir);
    path_ = dir_ / "coordinator.db";
  }
  client::TempDir dir_;
  std::string path_;
};

TEST_F(JournalTest, AReopenedJournalHoldsUnfinishedJobsWithTheirResults) {
  {
    auto journal = Journal::Open(path_);
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    (*journal)->Accepted("job-1", "client-a", MathSpec(3), 1'000);
    (*journal)->Accepted("job-2", "client-b", MathSpec(1), 2'000);
    (*journal)->Finished(Done("job-1", 2));
    (*journal)->Finished(Done("job-1", 2));  // a duplicate is kept once
    (*journal)->Finished(Done("job-2", 1, false));
    pb::JobDone done;
    done.set_job_id("job-2");
    done.set_failed(1);
    (*journal)->Completed(done, 3'000);
    ASSERT_TRUE((*journal)->Commit().ok());
    (*journal)->Finished(Done("job-1", 3));  // never committed: as if killed here
  }
  auto journal = Journal::Open(path_);
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  auto jobs = (*journal)->Unfinished();
  ASSERT_TRUE(jobs.ok());
  // The destructor commits what is open (a clean exit); job-1 has 2 and 3.
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].id, "job-1");
  EXPECT_EQ((*jobs)[0].client, "client-a");
  EXPECT_EQ((*jobs)[0].spec.count(), 3u);
  EXPECT_EQ((*jobs)[0].accepted_us, 1'000);
  ASSERT_EQ((*jobs)[0].results.size(), 2u);
  EXPECT_EQ((*jobs)[0].results[0].index(), 2u);
  EXPECT_EQ((*jobs)[0].results[0].number(), 20.0);
  ASSERT_TRUE((*journal)->Done("job-2").has_value());
  EXPECT_EQ((*journal)->Done("job-2")->failed(), 1u);
  EXPECT_EQ((*journal)->Results("job-2").size(), 1u);
  EXPECT_FALSE((*journal)->Done("job-1").has_value());

  (*journal)->Prune(3'001);
  ASSERT_TRUE((*journal)->Commit().ok());
  EXPECT_FALSE((*journal)->Done("job-2").has_value());
  EXPECT_TRUE((*journal)->Results("job-2").empty());
  EXPECT_EQ((*journal)->Results("job-1").size(), 2u);
}

TEST_F(JournalTest, JobsRunningTogetherShareRowsAndEachGetsOnlyItsOwn) {
  auto journal = Journal::Open(path_);
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  (*journal)->Accepted("old", "c", MathSpec(1), 1);
  (*journal)->Finished(Done("old", 1));
  pb::JobDone done;
  done.set_job_id("old");
  (*journal)->Completed(done, 10);
  ASSERT_TRUE((*journal)->Commit().ok());
  // Three jobs finishing tasks in the same turns, turn after turn.
  for (const char* id : {"a", "b", "c"}) (*journal)->Accepted(id, "c", MathSpec(50), 20);
  for (uint32_t i = 1; i <= 50; ++i) {
    for (const char* id : {"a", "b", "c"}) {
      if (std::string(id) != "c" || i % 2 == 0) (*journal)->Finished(Done(id, i));
    }
    ASSERT_TRUE((*journal)->Commit().ok());
  }
  done.set_job_id("a");
  (*journal)->Completed(done, 30);
  ASSERT_TRUE((*journal)->Commit().ok());
  EXPECT_EQ((*journal)->Results("a").size(), 50u);
  EXPECT_EQ((*journal)->Results("c").size(), 25u);
  for (const pb::Result& r : (*journal)->Results("c")) EXPECT_EQ(r.job_id(), "c");
  EXPECT_TRUE((*journal)->Results("nobody").empty());
  // The latest few, the most recent first, only the job's own; the turn's
  // own results (not yet committed) included.
  (*journal)->Finished(Done("b", 51));
  std::vector<uint32_t> latest;
  for (const pb::Result& r : (*journal)->LatestResults("c", 3)) latest.push_back(r.index());
  EXPECT_EQ(latest, (std::vector<uint32_t>{50, 48, 46}));
  EXPECT_EQ((*journal)->LatestResults("b", 1)[0].index(), 51u);
  EXPECT_EQ((*journal)->LatestResults("c", 100).size(), 25u);
  EXPECT_TRUE((*journal)->LatestResults("c", 0).empty());
  EXPECT_TRUE((*journal)->LatestResults("nobody", 5).empty());
  ASSERT_TRUE((*journal)->Commit().ok());
  // A job accepted now has nothing, though rows are around it.
  (*journal)->Accepted("d", "c", MathSpec(5), 40);
  EXPECT_TRUE((*journal)->Results("d").empty());
  // Pruning "old" and "a" keeps every row the others need.
  (*journal)->Prune(31);
  ASSERT_TRUE((*journal)->Commit().ok());
  EXPECT_TRUE((*journal)->Results("old").empty());
  EXPECT_FALSE((*journal)->Done("a").has_value());
  EXPECT_EQ((*journal)->Results("b").size(), 51u);
  EXPECT_EQ((*journal)->Results("c").size(), 25u);
  // ...and a restart finds the same.
  journal->reset();
  auto reopened = Journal::Open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  auto jobs = (*reopened)->Unfinished();
  ASSERT_TRUE(jobs.ok());
  std::map<std::string, size_t> found;
  for (const JournaledJob& job : *jobs) found[job.id] = job.results.size();
  EXPECT_EQ(found, (std::map<std::string, size_t>{{"b", 51}, {"c", 25}, {"d", 0}}));
}

TEST_F(JournalTest, AJournalFromTheVersionBeforeIsReadAndUpgraded) {
  {
    // The layout before: one row per job per commit, an index on job.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    for (const char* sql :
         {"CREATE TABLE jobs (id TEXT PRIMARY KEY, client BLOB NOT NULL, spec BLOB NOT NULL, "
          "accepted_us INTEGER NOT NULL, done BLOB, ended_us INTEGER)",
          "CREATE TABLE results (job TEXT NOT NULL, batch BLOB NOT NULL)",
          "CREATE INDEX results_by_job ON results (job)"}) {
      ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql;
    }
    Statement job(db, "INSERT INTO jobs (id, client, spec, accepted_us) VALUES (?1, 'c', ?2, 1)");
    Bind(job.get(), 1, std::string("running"));
    BindBlob(job.get(), 2, MathSpec(3).SerializeAsString());
    ASSERT_EQ(sqlite3_step(job.get()), SQLITE_DONE);
    Statement row(db, "INSERT INTO results (job, batch) VALUES ('running', ?1)");
    const std::string result = Done("running", 2).SerializeAsString();
    std::string batch(4, '\0');
    batch[0] = static_cast<char>(result.size());
    BindBlob(row.get(), 1, batch + result);
    ASSERT_EQ(sqlite3_step(row.get()), SQLITE_DONE);
    job = Statement();
    row = Statement();
    sqlite3_close(db);
  }
  auto journal = Journal::Open(path_);
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  (*journal)->Finished(Done("running", 3));
  ASSERT_TRUE((*journal)->Commit().ok());
  auto jobs = (*journal)->Unfinished();
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  ASSERT_EQ((*jobs)[0].results.size(), 2u) << "the old row and the new one";
  EXPECT_EQ((*jobs)[0].results[0].index(), 2u);
  EXPECT_EQ((*jobs)[0].results[1].index(), 3u);
}

TEST_F(JournalTest, ASecondCoordinatorCannotOpenAJournalInUse) {
  auto first = Journal::Open(path_);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = Journal::Open(path_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message, "the journal " + path_ + " is in use by another coordinator");
}

TEST_F(JournalTest, AFullDiskBreaksTheJournalWithAClearErrorAndKeepsWhatWasCommitted) {
  auto journal = Journal::Open(path_);
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  (*journal)->Accepted("job-1", "c", MathSpec(100'000), 1);
  ASSERT_TRUE((*journal)->Commit().ok());
  (*journal)->LimitPages(3);
  for (uint32_t i = 1; i <= 20'000; ++i) (*journal)->Finished(Done("job-1", i));
  Status full = (*journal)->Commit();
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message, "the journal cannot be written: database or disk is full");
  EXPECT_EQ((*journal)->broken(), "database or disk is full");
  journal->reset();
  auto reopened = Journal::Open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  auto jobs = (*reopened)->Unfinished();
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u) << "the committed job is still there";
}

TEST_F(JournalTest, AnUnwritablePlaceIsAClearError) {
  auto journal = Journal::Open("/nonexistent-dir/coordinator.db");
  ASSERT_FALSE(journal.ok());
  EXPECT_NE(journal.error().message.find("/nonexistent-dir/coordinator.db"), std::string::npos);
}

}  // namespace
}  // namespace fanout::coordinator
