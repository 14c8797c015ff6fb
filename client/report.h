// The output contract of `fanout submit --json` (DESIGN.md), and the value
// formatting shared by every printer.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "client/job_client.h"

namespace fanout::client {

// {"job_id", "kind", "model", "concurrency", "workers_used", "tasks", "ok",
//  "failed", "wall_ms", "results": [{"index", "ok", "value", "error",
//  "worker", "attempts", "start_ms", "end_ms"}]}, results sorted by index.
// Times are milliseconds; start_ms/end_ms count from the job's acceptance.
// A value that is not text is base64 with "value_encoding": "base64"; kinds
// add fields of their own (exec: "exit_code"). docs/DESIGN.md has it all.
nlohmann::json ReportJson(const JobReport& report);

// `fanout jobs --json`: one job, {"job_id", "kind", "model", "state",
// "tasks", "ok", "failed", "running", "workers", "priority", "detached",
// "submitted_by", "accepted_ms", "ended_ms", "reason"}.
nlohmann::json JobInfoJson(const pb::JobInfo& job);

// `fanout status --json`: {"workers": [...], "jobs_running", ...}.
nlohmann::json StatusJson(const pb::StatusReply& status);
// A worker's state: "draining", "busy" when every slot (or, without a cap,
// its default pool) is taken, "working" or "idle".
std::string WorkerState(const pb::StatusReply::Worker& worker);

// A result's value for people: "2000001.0" (as Python prints floats),
// "Bulbasaur", "(12 bytes, not text)".
std::string FormatValue(const pb::Result& result);

}  // namespace fanout::client
