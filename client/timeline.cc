#include "client/timeline.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "client/report.h"
#include "common/text.h"

namespace fanout::client {
namespace {

std::string Ms(double ms) {
  if (ms >= 1000) return fmt::format("{:g} s", ms / 1000);
  return fmt::format("{:g} ms", ms);
}

}  // namespace

Timeline LayOut(const JobReport& report, size_t max_bars) {
  Timeline t;
  std::vector<const TaskRecord*> drawn;
  for (const TaskRecord& task : report.tasks) {
    if (task.done && task.result.started_us() > 0) drawn.push_back(&task);
  }
  if (drawn.size() > max_bars) {
    std::nth_element(drawn.begin(), drawn.end() - static_cast<ptrdiff_t>(max_bars), drawn.end(),
                     [](const TaskRecord* a, const TaskRecord* b) {
                       return a->result.started_us() < b->result.started_us();
                     });
    drawn.erase(drawn.begin(), drawn.end() - static_cast<ptrdiff_t>(max_bars));
    std::sort(drawn.begin(), drawn.end(),
              [](const TaskRecord* a, const TaskRecord* b) { return a->index < b->index; });
  }
  std::map<std::pair<std::string, uint32_t>, size_t> lane_of;
  for (const TaskRecord* task : drawn) {
    lane_of.emplace(std::pair{task->result.worker_id(), task->result.thread()}, 0);
  }
  for (auto& [key, index] : lane_of) {
    index = t.lanes.size();
    t.lanes.push_back({key.first, key.second});
  }
  for (const TaskRecord* task : drawn) {
    const pb::Result& r = task->result;
    Timeline::Bar bar;
    bar.lane = lane_of.at({r.worker_id(), r.thread()});
    bar.row = 0;
    bar.index = task->index;
    bar.start_ms = (r.started_us() - report.accepted_us) / 1000.0;
    bar.end_ms = (r.finished_us() - report.accepted_us) / 1000.0;
    bar.ok = r.ok();
    bar.label = r.ok() ? FormatValue(r) : r.error();
    t.span_ms = std::max(t.span_ms, bar.end_ms);
    t.bars.push_back(std::move(bar));
  }
  // Rows: lane by lane; within a lane, by start time when each task gets one.
  const bool row_per_task = t.bars.size() <= kRowPerTaskLimit;
  std::vector<std::vector<Timeline::Bar*>> by_lane(t.lanes.size());
  for (Timeline::Bar& bar : t.bars) by_lane[bar.lane].push_back(&bar);
  for (size_t lane = 0; lane < t.lanes.size(); ++lane) {
    auto& bars = by_lane[lane];
    std::stable_sort(bars.begin(), bars.end(), [](const Timeline::Bar* a, const Timeline::Bar* b) {
      return a->start_ms < b->start_ms;
    });
    t.lanes[lane].first_row = t.rows;
    t.lanes[lane].rows = row_per_task ? std::max<size_t>(1, bars.size()) : 1;
    for (size_t i = 0; i < bars.size(); ++i) bars[i]->row = t.rows + (row_per_task ? i : 0);
    t.rows += t.lanes[lane].rows;
  }
  return t;
}

double TickStep(double span_ms) {
  if (span_ms <= 0) return 1;
  const double raw = span_ms / 8;
  const double power = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= raw) return m * power;
  }
  return 10 * power;
}

std::string RenderSvg(const Timeline& t, const std::string& title) {
  constexpr double kLabel = 170, kPlot = 760, kLane = 18, kTop = 40, kAxis = 36;
  const double span = std::max(t.span_ms, 1.0);
  const double step = TickStep(span);
  const double axis_end = std::ceil(span / step) * step;
  const double scale = kPlot / axis_end;
  const double height = kTop + kLane * static_cast<double>(std::max<size_t>(1, t.rows)) + kAxis;
  const double width = kLabel + kPlot + 30;
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" font-family="sans-serif" font-size="11">
<style>.ok{{fill:#4caf50}}.failed{{fill:#e53935}}.lane{{fill:#f4f4f4}}.grid{{stroke:#ddd}}</style>
<rect width="{0}" height="{1}" fill="white"/>
<text x="10" y="22" font-size="14" font-weight="bold">{2}</text>
)",
      width, height, HtmlEscape(title));
  for (size_t i = 0; i < t.lanes.size(); ++i) {
    const double y = kTop + kLane * static_cast<double>(t.lanes[i].first_row);
    if (i % 2 == 0) {
      svg += fmt::format(R"(<rect class="lane" x="{}" y="{}" width="{}" height="{}"/>)"
                         "\n",
                         kLabel, y, kPlot, kLane * static_cast<double>(t.lanes[i].rows));
    }
    svg += fmt::format(R"(<text x="10" y="{}">{} #{}</text>)"
                       "\n",
                       y + kLane - 5, HtmlEscape(t.lanes[i].worker), t.lanes[i].thread);
  }
  const double axis_y = kTop + kLane * static_cast<double>(std::max<size_t>(1, t.rows));
  for (double tick = 0; tick <= axis_end + step / 2; tick += step) {
    const double x = kLabel + tick * scale;
    svg += fmt::format(R"(<line class="grid" x1="{0}" y1="{1}" x2="{0}" y2="{2}"/>)"
                       R"(<text x="{0}" y="{3}" text-anchor="middle">{4}</text>)"
                       "\n",
                       x, kTop, axis_y + 4, axis_y + 16, Ms(tick));
  }
  for (const Timeline::Bar& bar : t.bars) {
    const double x = kLabel + bar.start_ms * scale;
    const double w = std::max(1.0, (bar.end_ms - bar.start_ms) * scale);
    const double y = kTop + kLane * static_cast<double>(bar.row) + 2;
    svg += fmt::format(
        R"(<rect class="task {}" x="{:.1f}" y="{}" width="{:.1f}" height="{}"><title>task {}: {} ({:.1f} to {:.1f} ms)</title></rect>)"
        "\n",
        bar.ok ? "ok" : "failed", x, y, w, kLane - 4, bar.index, HtmlEscape(bar.label),
        bar.start_ms, bar.end_ms);
  }
  svg += fmt::format(
      R"(<text x="{}" y="{}" text-anchor="middle">time since the job was accepted</text>)"
      "\n</svg>\n",
      kLabel + kPlot / 2, axis_y + 30);
  return svg;
}

nlohmann::json RenderTrace(const Timeline& t) {
  nlohmann::json events = nlohmann::json::array();
  std::map<std::string, int> pid_of;
  for (size_t i = 0; i < t.lanes.size(); ++i) {
    auto [it, fresh] = pid_of.emplace(t.lanes[i].worker, static_cast<int>(pid_of.size()) + 1);
    if (fresh) {
      events.push_back({{"name", "process_name"},
                        {"ph", "M"},
                        {"pid", it->second},
                        {"args", {{"name", t.lanes[i].worker}}}});
    }
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", it->second},
                      {"tid", t.lanes[i].thread},
                      {"args", {{"name", fmt::format("lane {}", t.lanes[i].thread)}}}});
  }
  for (const Timeline::Bar& bar : t.bars) {
    const Timeline::Lane& lane = t.lanes[bar.lane];
    events.push_back({{"name", fmt::format("task {}", bar.index)},
                      {"cat", bar.ok ? "ok" : "failed"},
                      {"ph", "X"},
                      {"ts", bar.start_ms * 1000},
                      {"dur", (bar.end_ms - bar.start_ms) * 1000},
                      {"pid", pid_of.at(lane.worker)},
                      {"tid", lane.thread},
                      {"args", {{"result", bar.label}}}});
  }
  return {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
}

Status WriteTimeline(const JobReport& report, const std::string& path, const std::string& title) {
  const Timeline t = LayOut(report);
  std::ofstream out(path);
  if (path.ends_with(".json")) {
    out << RenderTrace(t).dump() << "\n";
  } else {
    out << RenderSvg(t, title);
  }
  if (!out) return Unavailable("cannot write {}", path);
  return {};
}

Status CheckTimelinePath(const std::string& path) {
  if (!path.ends_with(".svg") && !path.ends_with(".json")) {
    return InvalidArgument(
        "--timeline {}: the name must end in .svg (a picture) or .json (a "
        "Chrome trace)",
        path);
  }
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
  if (access(dir.c_str(), W_OK) != 0) {
    return InvalidArgument("--timeline {}: cannot write in {}: {}", path, dir,
                           std::strerror(errno));
  }
  return {};
}

}  // namespace fanout::client
