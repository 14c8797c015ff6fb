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

}  // namespace fanout::jobs
