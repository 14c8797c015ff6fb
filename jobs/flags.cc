#include "jobs/flags.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace fanout::jobs {

Status ForEachLine(const std::string& path, const std::function<Status(std::string&&)>& each) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) {
      return InvalidArgument("cannot read {}: it is a directory", path);
    }
    file.open(path);
    if (!file) return InvalidArgument("cannot read {}: {}", path, std::strerror(errno));
    in = &file;
  }
  std::string line;
  while (std::getline(*in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (Status s = each(std::move(line)); !s) return s;
  }
  if (in->bad()) {
    return InvalidArgument("cannot read {}: {}", SourceName(path), std::strerror(errno));
  }
  return {};
}

Result<std::vector<std::string>> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  Status s = ForEachLine(path, [&](std::string&& line) -> Status {
    lines.push_back(std::move(line));
    return {};
  });
  if (!s) return s.error();
  return lines;
}

ItemFlags::ItemFlags(CLI::App& cmd) {
  // One value each (repeat the flag for more), so that "--arg x -- cmd"
  // ends the item list where it should.
  cmd.add_option("--arg", args_, "an item: one task runs with it (repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--args-file", args_file_,
                 "one item per line of FILE (- is stdin); blank lines are skipped");
}

Status ItemFlags::Collect(google::protobuf::RepeatedPtrField<std::string>* items, size_t spec_bytes,
                          const std::function<Status(const std::string&, size_t)>& check) const {
  size_t bytes = spec_bytes;
  auto add = [&](std::string&& item) -> Status {
    const size_t number = static_cast<size_t>(items->size()) + 1;
    if (Status s = check(item, number); !s) return s;
    bytes += item.size() + 8;
    if (bytes > kMaxSpecBytes || number > kMaxTasksPerJob) {
      return InvalidArgument(
          "too many items: a job may carry at most {} items and {:.1f} MiB of them (this one "
          "passed that at item {}); split it into smaller jobs",
          kMaxTasksPerJob, static_cast<double>(kMaxSpecBytes) / (1 << 20), number);
    }
    items->Add(std::move(item));
    return {};
  };
  for (std::string item : args_) {
    if (Status s = add(std::move(item)); !s) return s;
  }
  if (!args_file_.empty()) {
    Status read = ForEachLine(args_file_, [&](std::string&& line) -> Status {
      return line.empty() ? Status() : add(std::move(line));  // blank lines are skipped
    });
    if (!read) return read;
  }
  if (items->empty()) {
    if (args_file_.empty()) return InvalidArgument("no items: give --arg ITEM or --args-file FILE");
    return InvalidArgument("no items: {} has no lines", SourceName(args_file_));
  }
  return {};
}

}  // namespace fanout::jobs
