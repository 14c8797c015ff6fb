// LivePrinter: what `fanout submit` shows people. The article's live log
// while a job runs ("Doing math, starting_number=3..."), a progress line on
// long jobs, then a results table and "The job ran in 1.84 seconds."
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "client/job_client.h"
#include "common/term.h"

namespace fanout::cli {

class LivePrinter : public client::JobObserver {
 public:
  struct Options {
    std::FILE* out = stdout;        // the log and the summary
    bool per_task = true;           // a log line per task start and end
    std::FILE* progress = nullptr;  // a progress line here, if set (a terminal)
  };
  explicit LivePrinter(Options options);

  void OnAccepted(const client::JobReport& report) override;
  void OnDispatched(const client::JobReport& report, const client::TaskRecord& task,
                    uint32_t attempt) override;
  bool WantsDispatched() const override { return options_.per_task; }
  void OnDone(const client::JobReport& report, const client::TaskRecord& task) override;
  void OnTick(const client::JobReport& report) override;
  void OnWaiting(const client::JobReport& report, const std::string& reason) override;

  void PrintSummary(const client::JobReport& report);

 private:
  void DrawProgress(const client::JobReport& report, bool force);
  void ClearProgress();
  void PrintLedger(const pb::LedgerSnapshot& ledger);

  Options options_;
  Style style_;
  TimePoint started_;
  TimePoint last_draw_;
  bool progress_shown_ = false;
};

// How a job's end is shown (submit, watch, result all end the same way).
struct EndFlags {
  bool json = false;                   // one JSON summary on the last line of stdout
  bool quiet = false;                  // no table
  std::vector<std::string> timelines;  // FILE.svg / FILE.json to draw
};

// Prints what a job's client prints when it ends: the table and summary
// (unless quiet), the timelines, the JSON. Returns the exit status: 0 every
// task ok and the result right, 1 otherwise (a failed task, a cancelled
// job, money that does not add up), 130 when this client was interrupted.
int EndOfJob(const client::JobReport& report, const EndFlags& flags, LivePrinter& printer);

// Lines of the article's log for one task, as the job's kind words them.
std::string StartLine(const pb::JobSpec& spec, uint32_t index);
std::string DoneLine(const pb::JobSpec& spec, const client::TaskRecord& task);
// The task's number in the results table ("03", or web's page "149").
std::string TaskLabel(const pb::JobSpec& spec, uint32_t index);

}  // namespace fanout::cli
