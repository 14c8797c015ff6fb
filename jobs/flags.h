// What several kinds' `fanout submit KIND` flags share: the --count flag
// with its range from the limits (jobs/registry.h), so the command line and
// the coordinator agree on every bound, and reading a list from a file.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "jobs/registry.h"

namespace fanout::jobs {

// --count N: how many tasks (1 ... kMaxTasksPerJob).
inline CLI::Option* AddCountFlag(CLI::App& cmd, uint32_t& count) {
  return cmd.add_option("--count", count, "number of tasks")
      ->check(CLI::Range(uint32_t{1}, kMaxTasksPerJob))
      ->capture_default_str();
}

// Calls `line` with each line of `path` ("-": standard input), without its
// line end ("\n" or "\r\n"), until it returns an error; an error naming the
// file if it cannot be read. Streams: a huge file is never all in memory.
Status ForEachLine(const std::string& path, const std::function<Status(std::string&&)>& line);

// Every line of `path`, as ForEachLine reads them.
Result<std::vector<std::string>> ReadLines(const std::string& path);

// "stdin" for "-", else the path: for messages.
inline std::string SourceName(const std::string& path) { return path == "-" ? "stdin" : path; }

}  // namespace fanout::jobs
