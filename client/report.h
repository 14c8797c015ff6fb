// The output contract of `fanout submit --json` (DESIGN.md), and the value
// formatting shared by every printer.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "client/job_client.h"

namespace fanout::client {

// {"job_id", "kind", "model", "state", "concurrency", "workers_used",
//  "tasks", "ok", "failed", "wall_ms", "results": [{"index", "ok", "value",
//  "error", "worker", "attempts", "start_ms", "end_ms"}]}, results sorted by
// index. A job still running (no JobDone yet) is "running", with the
// counts so far.
// Times are milliseconds; start_ms/end_ms count from the job's acceptance.
// A value that is not text is base64 with "value_encoding": "base64"; kinds
// add fields of their own (exec: "exit_code"). docs/DESIGN.md has it all.
// Without `with_results`, the same object but for "results" (the summary).
nlohmann::json ReportJson(const JobReport& report, bool with_results = true);

// How a job ended: "cancelled" (by someone, its client gone, the
// coordinator stopping), "failed" (a task failed, or it ended early for
// another reason) or "done".
std::string EndedState(const pb::JobDone& done);

// `fanout jobs --json`: one job, {"job_id", "kind", "model", "state",
// "tasks", "ok", "failed", "running", "workers", "priority", "detached",
// "submitted_by", "accepted_ms", "ended_ms", "reason"}.
nlohmann::json JobInfoJson(const pb::JobInfo& job);

// `fanout status --json`: {"workers": [...], "jobs_running", ...}.
nlohmann::json StatusJson(const pb::StatusReply& status);
// A worker's state: "draining", "busy" when every slot (or, without a cap,
// its default pool) is taken, "working" or "idle".
std::string WorkerState(const pb::StatusReply::Worker& worker);
// What a worker runs, as `fanout status` shows it: "math, web, bank" or
// "call (resize, thumb)".
std::string Runs(const pb::StatusReply::Worker& worker);

// A result's value for people: "2000001.0" (as Python prints floats),
// "Bulbasaur", "(12 bytes, not text)".
std::string FormatValue(const pb::Result& result);

}  // namespace fanout::client
