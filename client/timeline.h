// Timelines: what happened in a job, drawn as the article's diagrams. One
// lane per worker and per thread or coroutine slot on it, one bar per task
// from its start to its end, on a shared time axis.
//
// Times are the workers' start and finish stamps relative to the job's
// acceptance, all on the coordinator's clock: the coordinator moves each
// result's stamps by the worker's clock offset, which the heartbeats measure
// as NTP does (see Heartbeat in proto/fanout.proto).
//
//   Timeline t = LayOut(report);
//   WriteFile("run.svg", RenderSvg(t, "web under async"));
//   WriteFile("run.json", RenderTrace(t).dump());
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/job_client.h"
#include "common/result.h"

namespace fanout::client {

struct Timeline {
  struct Lane {
    std::string worker;
    uint32_t thread;       // pool thread or coroutine slot on that worker
    size_t first_row = 0;  // where the lane starts in the picture
    size_t rows = 1;
  };
  struct Bar {
    size_t lane;
    size_t row;       // each task its own row within its lane (small jobs)
    uint32_t index;   // the task
    double start_ms;  // since the job was accepted
    double end_ms;
    bool ok;
    std::string label;  // the value or the error
  };
  std::vector<Lane> lanes;  // by worker, then thread
  std::vector<Bar> bars;    // by task index
  double span_ms = 0;       // the axis runs from 0 to here
  size_t rows = 0;
};

// Jobs of up to this many tasks get a row per task, so tasks that ran one
// after another on a lane make a staircase, as the article draws them;
// bigger ones a row per lane.
inline constexpr size_t kRowPerTaskLimit = 200;

// At most `max_bars` bars: the tasks that started last.
Timeline LayOut(const JobReport& report, size_t max_bars = SIZE_MAX);

// A tick step for an axis of `span_ms`: 1, 2 or 5 times a power of ten,
// giving 4 to 10 ticks.
double TickStep(double span_ms);

std::string RenderSvg(const Timeline& timeline, const std::string& title);
// Chrome trace-event JSON (Perfetto, chrome://tracing): a process per
// worker, a thread per lane, a complete event per task.
nlohmann::json RenderTrace(const Timeline& timeline);

// Writes a timeline of `report` to `path`: SVG for *.svg, trace JSON for *.json.
Status WriteTimeline(const JobReport& report, const std::string& path, const std::string& title);

// OK if a timeline can be written to `path` (FILE.svg or FILE.json in a
// directory that exists and can be written), else why not, before a job runs.
Status CheckTimelinePath(const std::string& path);

}  // namespace fanout::client
