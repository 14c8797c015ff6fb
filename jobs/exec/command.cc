#include "jobs/exec/command.h"

#include <fmt/format.h>
#include <string.h>

#include "common/text.h"

namespace fanout::jobs::exec {
namespace {

void ReplaceAll(std::string& s, std::string_view what, std::string_view with) {
  for (size_t at = 0; (at = s.find(what, at)) != std::string::npos; at += with.size()) {
    s.replace(at, what.size(), with);
  }
}

}  // namespace

std::vector<std::string> BuildArgv(const std::vector<std::string>& command, const std::string& item,
                                   uint32_t index, bool item_on_stdin) {
  std::vector<std::string> argv;
  argv.reserve(command.size() + 1);
  const std::string number = std::to_string(index);
  bool placed = false;
  for (const std::string& arg : command) {
    std::string out = arg;
    // {#} first: an item that happens to contain "{#}" stays as it is.
    ReplaceAll(out, "{#}", number);
    if (out.find("{}") != std::string::npos) {
      placed = true;
      if (!item_on_stdin) ReplaceAll(out, "{}", item);
    }
    argv.push_back(std::move(out));
  }
  if (!placed && !item_on_stdin) argv.push_back(item);
  return argv;
}

bool ProgramFromItem(const std::vector<std::string>& command) {
  return !command.empty() && command[0].find("{}") != std::string::npos;
}

Status CheckCommand(const std::vector<std::string>& command) {
  if (command.empty() || command[0].empty()) {
    return InvalidArgument("no command to run: give it after --, e.g. -- echo {{}}");
  }
  if (command.size() > kMaxCommandArgs) {
    return InvalidArgument("the command has {} arguments; at most {}", command.size(),
                           kMaxCommandArgs);
  }
  for (size_t i = 0; i < command.size(); ++i) {
    if (command[i].find('\0') != std::string::npos) {
      return InvalidArgument("argument {} of the command has a NUL byte", i + 1);
    }
    if (command[i].size() > kMaxItemBytes) {
      return InvalidArgument("argument {} of the command is longer than {} bytes", i + 1,
                             kMaxItemBytes);
    }
    if (!IsUtf8(command[i])) {
      return InvalidArgument("argument {} of the command is not UTF-8 text", i + 1);
    }
  }
  return {};
}

Status CheckItem(std::string_view item, size_t number) {
  if (item.find('\0') != std::string_view::npos) {
    return InvalidArgument("item {} has a NUL byte: items are lines of text", number);
  }
  if (item.size() > kMaxItemBytes) {
    return InvalidArgument("item {} is {} bytes long; an argument may be at most {}", number,
                           item.size(), kMaxItemBytes);
  }
  if (!IsUtf8(item)) return InvalidArgument("item {} is not UTF-8 text", number);
  return {};
}

Status CheckEnv(std::string_view entry) {
  const size_t eq = entry.find('=');
  if (eq == 0 || eq == std::string_view::npos) {
    return InvalidArgument("--env wants NAME=value (got '{}')", ToUtf8(entry.substr(0, 100)));
  }
  if (entry.find('\0') != std::string_view::npos || !IsUtf8(entry)) {
    return InvalidArgument("--env {} is not text", ToUtf8(entry.substr(0, eq)));
  }
  return {};
}

std::string ShellQuote(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !arg.empty() && arg.find_first_not_of(
                                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789_-./=:,+@%") == std::string::npos;
    if (plain) {
      out += arg;
      continue;
    }
    out += '\'';
    for (char c : arg) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += '\'';
  }
  return out;
}

bool Output::Append(std::string_view data) {
  if (over_) return false;
  if (data_.size() + data.size() > cap_) {
    over_ = true;
    data_.clear();
    data_.shrink_to_fit();
    return false;
  }
  data_.append(data);
  return true;
}

std::string Output::Value() const {
  if (!data_.empty() && data_.back() == '\n') return data_.substr(0, data_.size() - 1);
  return data_;
}

void Tail::Append(std::string_view data) {
  if (data.size() >= kStderrKept) {
    data_.assign(data.substr(data.size() - kStderrKept));
    return;
  }
  data_.append(data);
  if (data_.size() > 2 * kStderrKept) data_.erase(0, data_.size() - kStderrKept);
}

std::string Tail::Last(size_t lines, size_t bytes) const {
  std::vector<std::string_view> kept;
  std::string_view rest = data_;
  while (!rest.empty() && kept.size() < lines) {
    const size_t nl = rest.find_last_of('\n');
    std::string_view line = nl == std::string_view::npos ? rest : rest.substr(nl + 1);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(0, nl);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) kept.push_back(line);
  }
  std::string out;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    if (!out.empty()) out += " / ";
    out.append(*it);
  }
  if (out.size() > bytes) out = "…" + out.substr(out.size() - bytes);
  return ToUtf8(out);
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < (1 << 20)) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  if (bytes < (1ull << 30)) {
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
  }
  return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1ull << 30));
}

std::string Describe(const Ending& e, const std::string& stderr_tail) {
  std::string what;
  switch (e.how) {
    case Ending::kExited:
      what = fmt::format("exit {}", e.status);
      break;
    case Ending::kSignaled: {
      const char* name = sigabbrev_np(e.status);
      what = name != nullptr ? fmt::format("killed by signal {} (SIG{})", e.status, name)
                             : fmt::format("killed by signal {}", e.status);
      break;
    }
    case Ending::kTimedOut:
      what = fmt::format("timed out after {:.1f} s (--timeout-ms): its process group was killed",
                         ToMillis(e.timeout) / 1000);
      break;
    case Ending::kOverCap:
      what =
          fmt::format("output over the {} cap (--max-output-bytes): its process group was killed",
                      HumanBytes(e.cap));
      break;
    case Ending::kStopped:
      what = "stopped: its process group was killed";
      break;
    case Ending::kNotStarted:
      return e.why;
  }
  return stderr_tail.empty() ? what : fmt::format("{}: {}", what, stderr_tail);
}

}  // namespace fanout::jobs::exec
