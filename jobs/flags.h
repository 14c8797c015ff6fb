// What several kinds' `fanout submit KIND` flags share: the --count flag
// with its range from the limits (jobs/registry.h), so the command line and
// the coordinator agree on every bound, and reading a list from a file.
#pragma once

#include <google/protobuf/repeated_field.h>

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

// --arg ITEM (repeatable) and --args-file FILE|-: a job's items, one task
// each (exec, call).
class ItemFlags {
 public:
  explicit ItemFlags(CLI::App& cmd);
  // Appends the items to `items`, each checked by `check` (with its
  // 1-based number), and stops once the spec could not travel in one
  // message: `spec_bytes` is its size without them. A file of 10^7 lines is
  // refused after its first 16 MiB, not loaded whole. No items is an error.
  Status Collect(google::protobuf::RepeatedPtrField<std::string>* items, size_t spec_bytes,
                 const std::function<Status(const std::string& item, size_t number)>& check) const;

 private:
  std::vector<std::string> args_;
  std::string args_file_;
};

// "stdin" for "-", else the path: for messages.
inline std::string SourceName(const std::string& path) { return path == "-" ? "stdin" : path; }

}  // namespace fanout::jobs
