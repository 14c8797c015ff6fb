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
nlohmann::json ReportJson(const JobReport& report);

// A result's value for people: "2000001.0" (as Python prints floats),
// "Bulbasaur".
std::string FormatValue(const pb::Result& result);

// A number as Python's repr prints a float: 2000001.0, 0.1, 1e+16.
std::string PythonFloat(double x);

}  // namespace fanout::client
