#include "cli/comparison.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "client/report.h"
#include "client/timeline.h"
#include "common/text.h"
#include "jobs/registry.h"

namespace fanout::cli {

jobs::Verdict Judge(const client::JobReport& report, const client::JobReport* baseline) {
  const size_t n = report.tasks.size();
  std::vector<const pb::Result*> results;
  for (const client::TaskRecord& task : report.tasks) {
    results.push_back(task.done ? &task.result : nullptr);
  }
  if (const jobs::JobKind* kind = jobs::Kinds().For(report.spec)) {
    if (std::optional<jobs::Verdict> v = kind->Verify(report.spec, results, report.done)) return *v;
  }
  if (report.done.ok() != n) {
    return {false, fmt::format("{} of {} tasks failed", n - report.done.ok(), n)};
  }
  if (baseline == nullptr || baseline->tasks.size() != n) {
    return {true, fmt::format("all {} ok", n)};
  }
  size_t differ = 0;
  for (size_t i = 0; i < n; ++i) {
    const pb::Result& a = report.tasks[i].result;
    const pb::Result& b = baseline->tasks[i].result;
    if (client::FormatValue(a) != client::FormatValue(b) || a.data() != b.data()) ++differ;
  }
  if (differ > 0) return {false, fmt::format("{} of {} values differ from sync", differ, n)};
  return {true, fmt::format("all {} ok, as sync", n)};
}

RunProgress::RunProgress(std::string what, const Style& style)
    : what_(std::move(what)), style_(style) {}

RunProgress::~RunProgress() {
  if (drawn_) fmt::print("\r\x1b[K");
  std::fflush(stdout);
}

void RunProgress::OnDone(const client::JobReport& report, const client::TaskRecord&) {
  Draw(report);
}
void RunProgress::OnTick(const client::JobReport& report) { Draw(report); }

void RunProgress::OnWaiting(const client::JobReport&, const std::string& reason) {
  if (reason.empty()) return;
  if (drawn_) fmt::print("\r\x1b[K");
  drawn_ = false;
  fmt::print(stderr, "{}\n", style_.Yellow(fmt::format("  {}: waiting: {}", what_, reason)));
}

void RunProgress::Draw(const client::JobReport& report) {
  if (!style_.enabled()) return;
  fmt::print("\r\x1b[K  {}: {}/{} tasks, {:.1f} s", what_, report.finished, report.tasks.size(),
             ToMillis(Now() - started_) / 1000);
  std::fflush(stdout);
  drawn_ = true;
}

ComparisonTable::ComparisonTable(std::FILE* out, std::string dir)
    : out_(out), dir_(std::move(dir)), style_(Style::For(out)) {}

Status ComparisonTable::Open() {
  if (dir_.empty()) return {};
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  if (error) return InvalidArgument("cannot make {}: {}", dir_, error.message());
  return {};
}

void ComparisonTable::PrintHeader() {
  fmt::print(out_, "{}\n",
             style_.Bold(fmt::format("  {:<5} {:<14} {:>7}  {:>10}  {:>8}  {}", "job", "model",
                                     "workers", "wall time", "speed-up", "result")));
  std::fflush(out_);
}

Status ComparisonTable::Add(const std::string& job, const std::string& label,
                            const client::JobReport& report, double baseline_ms,
                            const jobs::Verdict& verdict) {
  if (!rows_.empty() && rows_.back().job != job) fmt::print(out_, "\n");
  const double speedup = report.wall_ms > 0 ? baseline_ms / report.wall_ms : 0;
  all_right_ &= verdict.right;
  const std::string result = !verdict.right    ? style_.Red(verdict.text)
                             : verdict.warning ? style_.Yellow(verdict.text)
                                               : style_.Green(verdict.text);
  fmt::print(out_, "  {:<5} {:<14} {:>7}  {:>10}  {:>7.2f}x  {}\n", job, label,
             report.done.workers_used(), HumanDuration(report.wall_ms), speedup, result);
  std::fflush(out_);
  std::string name = fmt::format("{}-{}", job, label);
  std::replace(name.begin(), name.end(), '/', '-');
  std::replace(name.begin(), name.end(), ' ', '-');
  rows_.push_back(
      {job, label, report.done.workers_used(), report.wall_ms, speedup, verdict, name + ".svg"});
  if (dir_.empty()) return {};
  const std::string title =
      fmt::format("{} under {}: {}", job, label, HumanDuration(report.wall_ms));
  for (const char* ext : {".svg", ".json"}) {
    if (Status s = client::WriteTimeline(report, dir_ + "/" + name + ext, title); !s) return s;
  }
  return {};
}

Status ComparisonTable::WriteIndex(const std::string& title, const std::string& intro) const {
  if (dir_.empty()) return {};
  std::string html = fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{0}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:3px 12px;text-align:left}}tr:nth-child(even){{background:#f4f4f4}}
.bad{{color:#c62828}}.warn{{color:#a66d00}}figure{{margin:1.5em 0}}</style></head><body>
<h1>{0}</h1>
<p>{1} Each picture has a lane per worker thread or coroutine slot and a bar per
task, from its start to its end.</p>
<table><tr><th>job</th><th>model</th><th>workers</th><th>wall time</th><th>speed-up</th><th>result</th></tr>
)",
                                 HtmlEscape(title), HtmlEscape(intro));
  for (const Row& r : rows_) {
    const char* cls = !r.verdict.right    ? " class=\"bad\""
                      : r.verdict.warning ? " class=\"warn\""
                                          : "";
    html += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}x</td><td{}>{}</td></tr>\n",
        HtmlEscape(r.job), HtmlEscape(r.label), r.workers, HumanDuration(r.wall_ms), r.speedup, cls,
        HtmlEscape(r.verdict.text));
  }
  html += "</table>\n";
  for (const Row& r : rows_) {
    html += fmt::format("<figure><img src=\"{}\" alt=\"{} {}\"></figure>\n", HtmlEscape(r.picture),
                        HtmlEscape(r.job), HtmlEscape(r.label));
  }
  html += "</body></html>\n";
  std::ofstream out(dir_ + "/index.html");
  out << html;
  if (!out) return Unavailable("cannot write {}/index.html", dir_);
  return {};
}

nlohmann::json ComparisonTable::Json() const {
  nlohmann::json runs = nlohmann::json::array();
  for (const Row& r : rows_) {
    runs.push_back({{"job", r.job},
                    {"label", r.label},
                    {"workers_used", r.workers},
                    {"wall_ms", std::round(r.wall_ms * 10) / 10},
                    {"speedup", std::round(r.speedup * 100) / 100},
                    {"right", r.verdict.right},
                    {"result", r.verdict.text}});
  }
  return {{"runs", runs}, {"all_right", all_right_}};
}

}  // namespace fanout::cli
