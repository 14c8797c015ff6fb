#include "client/timeline.h"

#include <gtest/gtest.h>

namespace fanout::client {
namespace {

// A job accepted at t = 1 s: tasks on two workers, one with two threads.
JobReport Report() {
  JobReport report;
  report.accepted_us = 1'000'000;
  auto task = [&](uint32_t index, std::string worker, uint32_t thread, int64_t start_ms,
                  int64_t end_ms, bool ok) {
    TaskRecord t;
    t.index = index;
    t.done = true;
    t.result.set_worker_id(std::move(worker));
    t.result.set_thread(thread);
    t.result.set_started_us(1'000'000 + start_ms * 1000);
    t.result.set_finished_us(1'000'000 + end_ms * 1000);
    t.result.set_ok(ok);
    if (ok) t.result.set_text(fmt::format("page {}", index));
    if (!ok) t.result.set_error("HTTP 503 from <x>");
    report.tasks.push_back(t);
  };
  task(1, "w2", 0, 0, 100, true);
  task(2, "w1", 1, 10, 210, true);
  task(3, "w1", 0, 20, 120, false);
  TaskRecord pending;  // never finished: no bar
  pending.index = 4;
  report.tasks.push_back(pending);
  return report;
}

TEST(TimelineTest, OneLanePerWorkerThreadOneBarPerFinishedTask) {
  const Timeline t = LayOut(Report());
  ASSERT_EQ(t.lanes.size(), 3u);
  EXPECT_EQ(t.lanes[0].worker, "w1");
  EXPECT_EQ(t.lanes[0].thread, 0u);
  EXPECT_EQ(t.lanes[1].thread, 1u);
  EXPECT_EQ(t.lanes[2].worker, "w2");
  ASSERT_EQ(t.bars.size(), 3u);
  EXPECT_EQ(t.bars[1].lane, 1u);
  EXPECT_EQ(t.rows, 3u);
  EXPECT_DOUBLE_EQ(t.bars[1].start_ms, 10);
  EXPECT_DOUBLE_EQ(t.bars[1].end_ms, 210);
  EXPECT_FALSE(t.bars[2].ok);
  EXPECT_DOUBLE_EQ(t.span_ms, 210);
}

TEST(TimelineTest, TasksOneAfterAnotherOnALaneMakeAStaircase) {
  JobReport report;
  for (uint32_t i = 1; i <= 3; ++i) {
    TaskRecord t;
    t.index = i;
    t.done = true;
    t.result.set_worker_id("w1");
    t.result.set_started_us(int64_t{i} * 100'000);
    t.result.set_finished_us(int64_t{i} * 100'000 + 100'000);
    t.result.set_ok(true);
    report.tasks.push_back(t);
  }
  const Timeline t = LayOut(report);
  ASSERT_EQ(t.lanes.size(), 1u);
  EXPECT_EQ(t.lanes[0].rows, 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(t.bars[i].row, i);  // each lower and later
}

TEST(TimelineTest, TicksAreRoundSteps) {
  EXPECT_DOUBLE_EQ(TickStep(210), 50);
  EXPECT_DOUBLE_EQ(TickStep(4000), 500);
  EXPECT_DOUBLE_EQ(TickStep(1), 0.2);
  EXPECT_DOUBLE_EQ(TickStep(80), 10);
}

TEST(TimelineTest, SvgHasABarPerTaskScaledToTheAxisAndEscapesText) {
  const std::string svg = RenderSvg(LayOut(Report()), "web <async>");
  EXPECT_TRUE(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
  size_t bars = 0;
  for (size_t at = 0; (at = svg.find("<rect class=\"task ", at)) != std::string::npos; ++at) ++bars;
  EXPECT_EQ(bars, 3u);
  EXPECT_NE(svg.find("web &lt;async&gt;"), std::string::npos);
  EXPECT_NE(svg.find("HTTP 503 from &lt;x&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<x>"), std::string::npos);
  // The axis ends at 250 ms (5 steps of 50) over 760 px from x = 170: task 2
  // starts at 10 ms, so at 170 + 10 * 760 / 250 = 200.4.
  EXPECT_NE(svg.find("x=\"200.4\""), std::string::npos);
  EXPECT_NE(svg.find(">250 ms<"), std::string::npos);
}

TEST(TimelineTest, TraceHasCompleteEventsInMicroseconds) {
  const nlohmann::json trace = RenderTrace(LayOut(Report()));
  int tasks = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "X") continue;
    ++tasks;
    if (e["name"] == "task 2") {
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), 10'000);
      EXPECT_DOUBLE_EQ(e["dur"].get<double>(), 200'000);
      EXPECT_EQ(e["tid"], 1);
    }
  }
  EXPECT_EQ(tasks, 3);
  EXPECT_TRUE(nlohmann::json::parse(trace.dump()).is_object());
}

}  // namespace
}  // namespace fanout::client
