// The pure parts of the exec kind: building a task's argv from the job's
// command and its item, capturing output within a cap, and saying how a run
// ended. No processes here (process.h runs them), so all of it is
// unit-tested directly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace fanout::jobs::exec {

inline constexpr uint64_t kDefaultMaxOutputBytes = 1 << 20;
inline constexpr uint64_t kMaxOutputBytes = 1ull << 30;
inline constexpr uint32_t kMaxRetries = 20;
inline constexpr uint32_t kMaxTimeoutMs = 24 * 3'600'000;
inline constexpr uint32_t kMaxCommandArgs = 4096;
// Linux refuses a single argument longer than this (MAX_ARG_STRLEN).
inline constexpr size_t kMaxItemBytes = 128 * 1024 - 1;
inline constexpr size_t kMaxEnvEntries = 1024;
// After SIGTERM, how long a command's process group has before SIGKILL.
inline constexpr Duration kKillGrace = milliseconds(500);
// The end of standard error kept for the error message (the rest is dropped).
inline constexpr size_t kStderrKept = 64 * 1024;

// The arguments task `index` runs: in each argument of `command`, "{}"
// becomes `item` and "{#}" the index; if no argument holds "{}", the item is
// appended as one more argument (xargs' convention), unless it goes to
// standard input. The item is always one argument: nothing is split or
// passed through a shell.
std::vector<std::string> BuildArgv(const std::vector<std::string>& command, const std::string& item,
                                   uint32_t index, bool item_on_stdin);

// Whether the program itself (the first argument) would be built from the
// item: refused on a worker that allows only some programs.
bool ProgramFromItem(const std::vector<std::string>& command);

// OK, or why a job's command and items cannot run (empty command, a NUL
// byte, an item too long to be an argument, text that is not UTF-8).
Status CheckCommand(const std::vector<std::string>& command);
Status CheckItem(std::string_view item, size_t number);
Status CheckEnv(std::string_view entry);

// The argv as a person would type it: "convert 'a b.jpg' out.png".
std::string ShellQuote(const std::vector<std::string>& argv);

// Standard output, up to a cap: what arrives past it is dropped and
// remembered, and the task fails naming the cap.
class Output {
 public:
  explicit Output(uint64_t cap) : cap_(cap) {}
  // False once the output went past the cap.
  bool Append(std::string_view data);
  bool over() const { return over_; }
  uint64_t cap() const { return cap_; }
  // The value: the output with one trailing newline removed.
  std::string Value() const;

 private:
  uint64_t cap_;
  std::string data_;
  bool over_ = false;
};

// The last kStderrKept bytes of standard error.
class Tail {
 public:
  void Append(std::string_view data);
  // Its last `lines` non-empty lines, at most `bytes` long, as valid UTF-8.
  std::string Last(size_t lines = 3, size_t bytes = 400) const;

 private:
  std::string data_;
};

// How a run of a command ended.
struct Ending {
  enum How { kExited, kSignaled, kTimedOut, kOverCap, kStopped, kNotStarted } how = kNotStarted;
  int status = 0;      // kExited: the exit status; kSignaled: the signal
  std::string why;     // kNotStarted: the reason ("not found: convx")
  Duration timeout{};  // kTimedOut: the limit that passed
  uint64_t cap = 0;    // kOverCap: the cap
  bool ok() const { return how == kExited && status == 0; }
};

// The task's error for a failed run: "exit 3: boom", "killed by signal 9
// (SIGKILL)", "timed out after 2.0 s (--timeout-ms): process group killed",
// "output over the 1.0 MiB cap (--max-output-bytes)", "not found: convx";
// with the last lines of standard error where there are any.
std::string Describe(const Ending& ending, const std::string& stderr_tail);

// "1.0 MiB", "512 B": a byte count for people.
std::string HumanBytes(uint64_t bytes);

}  // namespace fanout::jobs::exec
