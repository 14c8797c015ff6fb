#include "client/report.h"

#include <gtest/gtest.h>

namespace fanout::client {
namespace {

JobReport MathReport() {
  JobReport report;
  report.spec.set_model(pb::THREADS);
  report.spec.mutable_math()->set_start(1);
  report.job_id = "abc-1";
  report.accepted_us = 1'000'000;
  report.wall_ms = 1840.04;
  report.done.set_job_id("abc-1");
  report.done.set_tasks(2);
  report.done.set_ok(1);
  report.done.set_failed(1);
  report.done.set_workers_used(2);
  report.done.set_concurrency(6);
  report.tasks.resize(2);
  for (uint32_t i = 0; i < 2; ++i) {
    TaskRecord& t = report.tasks[i];
    t.index = i + 1;
    t.done = true;
    t.result.set_index(i + 1);
    t.result.set_attempt(i + 1);
    t.result.set_worker_id(i == 0 ? "w1" : "w2");
    t.result.set_started_us(1'000'400 + i * 1000);
    t.result.set_finished_us(1'203'100 + i * 1000);
  }
  report.tasks[0].result.set_ok(true);
  report.tasks[0].result.set_number(2000001.0);
  report.tasks[1].result.set_ok(false);
  report.tasks[1].result.set_error("gave up after 2 attempts");
  return report;
}

TEST(ReportTest, AJobStillRunningSaysSoWithItsCountsSoFar) {
  JobReport report = MathReport();
  report.done = pb::JobDone();  // no JobDone yet
  report.tasks.resize(3);
  report.tasks[2].index = 3;  // not done
  const nlohmann::json j = ReportJson(report);
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["tasks"], 3);
  EXPECT_EQ(j["ok"], 1);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["workers_used"], 2);
  EXPECT_EQ(j["results"].size(), 2u);
}

TEST(ReportTest, AnEndedJobsStateSaysHowItEnded) {
  pb::JobDone done;
  done.set_tasks(3);
  done.set_ok(3);
  EXPECT_EQ(EndedState(done), "done");
  done.set_failed(1);
  EXPECT_EQ(EndedState(done), "failed");
  done.set_reason("cancelled by ann@host (pid 7): wrong input");
  EXPECT_EQ(EndedState(done), "cancelled");
  done.set_reason("the client went away");
  EXPECT_EQ(EndedState(done), "cancelled");
  done.set_reason("the ledger did not answer");
  EXPECT_EQ(EndedState(done), "failed");
}

TEST(ReportTest, JsonFollowsTheOutputContract) {
  const nlohmann::json j = ReportJson(MathReport());
  EXPECT_EQ(j["job_id"], "abc-1");
  EXPECT_EQ(j["kind"], "math");
  EXPECT_EQ(j["model"], "threads");
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["concurrency"], 6);
  EXPECT_EQ(j["workers_used"], 2);
  EXPECT_EQ(j["tasks"], 2);
  EXPECT_EQ(j["ok"], 1);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_DOUBLE_EQ(j["wall_ms"].get<double>(), 1840.0);
  ASSERT_EQ(j["results"].size(), 2u);
  const auto& first = j["results"][0];
  EXPECT_EQ(first["index"], 1);
  EXPECT_EQ(first["ok"], true);
  EXPECT_EQ(first["value"], 2000001.0);
  EXPECT_TRUE(first["error"].is_null());
  EXPECT_EQ(first["worker"], "w1");
  EXPECT_EQ(first["attempts"], 1);
  EXPECT_DOUBLE_EQ(first["start_ms"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(first["end_ms"].get<double>(), 203.1);
  const auto& second = j["results"][1];
  EXPECT_TRUE(second["value"].is_null());
  EXPECT_EQ(second["error"], "gave up after 2 attempts");
  EXPECT_EQ(second["attempts"], 2);
  EXPECT_FALSE(j.contains("ledger"));
  EXPECT_FALSE(j.contains("ended_early"));
}

}  // namespace
}  // namespace fanout::client
