// The comparison table of `fanout demo` and `fanout submit ... --compare`:
// one row per run of a job (a model, a number of workers), its wall time,
// its speed-up against the job's sync run and whether its results are
// right; each run drawn into a report directory (an SVG and a Chrome trace
// per run, and index.html with the table and every picture).
//
//   ComparisonTable table(stdout, out_dir);
//   table.PrintHeader();
//   RunProgress progress("web under async", table.style());
//   auto report = client.Run(spec, progress, signal_fd);
//   table.Add("web", "async", *report, Judge(*report, &baseline), false);
//   table.WriteIndex("fanout demo", "Twenty tasks a run.");
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "client/job_client.h"
#include "common/result.h"
#include "common/term.h"
#include "jobs/kind.h"

namespace fanout::cli {

// Whether a run's results are right: what the kind can tell from the spec
// (math's values, bank's sum), or else every task ok and, when given, the
// same values as `baseline` (the job's sync run).
jobs::Verdict Judge(const client::JobReport& report, const client::JobReport* baseline);

// A progress line while a run goes, on a terminal only; cleared when done.
class RunProgress : public client::JobObserver {
 public:
  RunProgress(std::string what, const Style& style);
  ~RunProgress() override;
  void OnDone(const client::JobReport& report, const client::TaskRecord&) override;
  void OnTick(const client::JobReport& report) override;
  void OnWaiting(const client::JobReport& report, const std::string& reason) override;

 private:
  void Draw(const client::JobReport& report);
  std::string what_;
  Style style_;
  bool drawn_ = false;
  TimePoint started_ = Now();
};

class ComparisonTable {
 public:
  // Rows go to `out`; with `dir` non-empty every run is drawn there.
  ComparisonTable(std::FILE* out, std::string dir);

  const Style& style() const { return style_; }
  // Makes the report directory (when there is one).
  Status Open();
  void PrintHeader();
  // Prints the row of a finished run (a blank line first when the job
  // changes) and draws it. `baseline`: the job's sync run, for the speed-up.
  Status Add(const std::string& job, const std::string& label, const client::JobReport& report,
             double baseline_ms, const jobs::Verdict& verdict);
  // index.html with the table and every picture.
  Status WriteIndex(const std::string& title, const std::string& intro) const;
  bool all_right() const { return all_right_; }
  // The rows as JSON, for --json.
  nlohmann::json Json() const;

 private:
  struct Row {
    std::string job, label;
    uint32_t workers;
    double wall_ms, speedup;
    jobs::Verdict verdict;
    std::string picture;
  };
  std::FILE* out_;
  std::string dir_;
  Style style_;
  std::vector<Row> rows_;
  bool all_right_ = true;
};

}  // namespace fanout::cli
