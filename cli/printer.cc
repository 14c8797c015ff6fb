#include "cli/printer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "client/report.h"
#include "client/timeline.h"
#include "common/text.h"
#include "jobs/registry.h"

namespace fanout::cli {

std::string StartLine(const pb::JobSpec& spec, uint32_t index) {
  const jobs::JobKind* kind = jobs::Kinds().For(spec);
  return kind != nullptr ? kind->StartLine(spec, index) : fmt::format("Starting task {}...", index);
}

std::string DoneLine(const pb::JobSpec& spec, const client::TaskRecord& task) {
  const pb::Result& r = task.result;
  if (const jobs::JobKind* kind = jobs::Kinds().For(spec)) {
    return kind->DoneLine(spec, task.index, r);
  }
  return r.ok() ? fmt::format("Task {} done.", task.index)
                : fmt::format("Task {} failed: {}", task.index, r.error());
}

std::string TaskLabel(const pb::JobSpec& spec, uint32_t index) {
  const jobs::JobKind* kind = jobs::Kinds().For(spec);
  return kind != nullptr ? kind->TaskLabel(spec, index) : fmt::format("{:02}", index);
}

LivePrinter::LivePrinter(Options options)
    : options_(options), style_(Style::For(options.out)), started_(Now()) {}

void LivePrinter::OnAccepted(const client::JobReport& report) {
  started_ = Now();
  const size_t n = report.tasks.size();
  fmt::print(options_.out, "{}\n",
             style_.Dim(fmt::format("job {}: {} {} task{} under {}", report.job_id, n,
                                    jobs::KindName(report.spec), n == 1 ? "" : "s",
                                    ModelName(report.spec.model()))));
  std::fflush(options_.out);
}

void LivePrinter::OnWaiting(const client::JobReport&, const std::string& reason) {
  ClearProgress();
  if (reason.empty()) {
    fmt::print(options_.out, "{}\n", style_.Dim("going on: a worker can run it now"));
  } else {
    fmt::print(options_.out, "{}\n", style_.Yellow("waiting: " + reason));
  }
  std::fflush(options_.out);
}

void LivePrinter::OnDispatched(const client::JobReport& report, const client::TaskRecord& task,
                               uint32_t attempt) {
  if (!options_.per_task) return;
  std::string line = style_.Cyan(StartLine(report.spec, task.index));
  if (attempt > 1) line += " " + style_.Yellow(fmt::format("(attempt {})", attempt));
  fmt::print(options_.out, "{} {}\n", line, style_.Dim("[" + task.worker + "]"));
  std::fflush(options_.out);
}

void LivePrinter::OnDone(const client::JobReport& report, const client::TaskRecord& task) {
  if (options_.per_task) {
    const std::string line = DoneLine(report.spec, task);
    fmt::print(options_.out, "{}\n", task.result.ok() ? style_.Green(line) : style_.Red(line));
    std::fflush(options_.out);
  }
  DrawProgress(report, false);
}

void LivePrinter::OnTick(const client::JobReport& report) { DrawProgress(report, false); }

void LivePrinter::DrawProgress(const client::JobReport& report, bool force) {
  if (options_.progress == nullptr || options_.per_task) return;
  const TimePoint now = Now();
  if (!force && now - last_draw_ < milliseconds(100)) return;
  last_draw_ = now;
  const double total = static_cast<double>(report.tasks.size());
  const double done = report.finished;
  const double secs = std::max(1e-3, ToMillis(now - started_) / 1000);
  constexpr int kWidth = 30;
  const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : 0;
  fmt::print(options_.progress, "\r\x1b[K  [{}{}] {}/{} tasks  {}/s  {:.1f} s",
             std::string(filled, '#'), std::string(kWidth - filled, ' '),
             static_cast<uint64_t>(done), static_cast<uint64_t>(total), HumanCount(done / secs),
             secs);
  std::fflush(options_.progress);
  progress_shown_ = true;
}

void LivePrinter::ClearProgress() {
  if (!progress_shown_) return;
  fmt::print(options_.progress, "\r\x1b[K");
  std::fflush(options_.progress);
  progress_shown_ = false;
}

void LivePrinter::PrintSummary(const client::JobReport& report) {
  ClearProgress();
  std::FILE* out = options_.out;
  const pb::JobDone& done = report.done;
  constexpr size_t kMaxRows = 200;
  const bool table = report.tasks.size() <= kMaxRows;
  size_t failures_shown = 0;
  if (table)
    fmt::print(out, "\n{}\n",
               style_.Bold("  task  value                 worker              time"));
  for (const client::TaskRecord& task : report.tasks) {
    if (!task.done) continue;
    const pb::Result& r = task.result;
    if (!table && (r.ok() || ++failures_shown > 20)) continue;
    const double ms = (r.finished_us() - r.started_us()) / 1000.0;
    // Values longer than their column are cut, so the columns stay aligned;
    // --json has them whole.
    const std::string value = Ellipsize(r.ok() ? client::FormatValue(r) : r.error(), 21);
    const std::string row =
        fmt::format("  {:>4}  {:<21} {:<19} {:>9}", TaskLabel(report.spec, task.index), value,
                    Ellipsize(r.worker_id(), 19), r.started_us() > 0 ? HumanDuration(ms) : "-");
    fmt::print(out, "{}\n", r.ok() ? row : style_.Red(row));
  }
  if (!table && failures_shown > 20)
    fmt::print(out, "  ... and {} more failures\n", failures_shown - 20);

  const std::string counts =
      fmt::format("{} task{}: {} ok, {} failed, on {} worker{} ({} under {}, concurrency {})",
                  done.tasks(), done.tasks() == 1 ? "" : "s", done.ok(), done.failed(),
                  done.workers_used(), done.workers_used() == 1 ? "" : "s",
                  jobs::KindName(report.spec), ModelName(report.spec.model()), done.concurrency());
  fmt::print(out, "\n{}\n", done.failed() == 0 ? style_.Green(counts) : style_.Red(counts));
  if (!done.reason().empty())
    fmt::print(out, "{}\n", style_.Yellow("Ended early: " + done.reason()));
  if (done.has_ledger()) PrintLedger(done.ledger());
  fmt::print(out, "{}\n",
             style_.Bold(fmt::format("The job ran in {:.2f} seconds.", report.wall_ms / 1000)));
  std::fflush(out);
}

void LivePrinter::PrintLedger(const pb::LedgerSnapshot& ledger) {
  std::FILE* out = options_.out;
  if (!ledger.error().empty()) {
    fmt::print(out, "{}\n", style_.Red("Could not read the final balances: " + ledger.error()));
    return;
  }
  std::vector<std::pair<std::string, int64_t>> rows(ledger.balances().begin(),
                                                    ledger.balances().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.first.size() != b.first.size() ? a.first.size() < b.first.size() : a.first < b.first;
  });
  fmt::print(out, "\n{}\n", style_.Bold("  account       balance"));
  for (const auto& [account, balance] : rows)
    fmt::print(out, "  {:<10} {:>10}\n", account, balance);
  const int64_t lost = ledger.expected_sum() - ledger.sum();
  const std::string sum =
      fmt::format("  {:<10} {:>10}  (expected {})", "sum", ledger.sum(), ledger.expected_sum());
  fmt::print(out, "{}\n", lost == 0 ? style_.Green(sum) : style_.Red(sum));
  if (lost != 0) {
    fmt::print(out, "{}\n",
               style_.Red(fmt::format("{} {} by concurrent updates without a lock.", std::abs(lost),
                                      lost > 0 ? "was lost" : "was created")));
  }
}

int EndOfJob(const client::JobReport& report, const EndFlags& flags, LivePrinter& printer) {
  if (!flags.quiet) printer.PrintSummary(report);
  for (const std::string& path : flags.timelines) {
    const std::string title = fmt::format("{} under {}, job {}", jobs::KindName(report.spec),
                                          ModelName(report.spec.model()), report.job_id);
    if (Status s = client::WriteTimeline(report, path, title); !s) {
      fmt::print(stderr, "fanout: {}\n", s.error().message);
    }
  }
  if (flags.json) {
    fmt::print(stdout, "{}\n", client::ReportJson(report).dump());
    std::fflush(stdout);
  }
  if (report.interrupted) return 130;
  const pb::JobDone& done = report.done;
  if (done.ok() != done.tasks() || !done.reason().empty()) return 1;
  // The kind may know better: money that does not add up is a wrong result.
  if (const jobs::JobKind* kind = jobs::Kinds().For(report.spec)) {
    std::vector<const pb::Result*> results;
    for (const client::TaskRecord& task : report.tasks) {
      results.push_back(task.done ? &task.result : nullptr);
    }
    const std::optional<jobs::Verdict> verdict = kind->Verify(report.spec, results, done);
    if (verdict && (!verdict->right || verdict->warning)) return 1;
  }
  return 0;
}

}  // namespace fanout::cli
