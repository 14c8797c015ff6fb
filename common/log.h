// Logging: spdlog on stderr, one line per event, tagged with the process.
//
//   InitLogging("worker", "info");
//   spdlog::info("task {}/{} done in {:.1f} ms", job, index, ms);
//
// Per-task lines are debug level: at 100,000 tasks/s info stays readable.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace fanout {

// Sets the default logger: "2026-11-25 10:00:00.123 info  worker[4242] ...".
// `level` is trace, debug, info, warn, error or off. Colour follows the
// terminal and NO_COLOR.
Status InitLogging(std::string_view process, std::string_view level);

// Hostname of this machine ("localhost" if it cannot be read).
std::string HostName();

// Logical cores available to this process.
unsigned Cores();

}  // namespace fanout
