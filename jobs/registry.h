// The registry of job kinds, and the limits every job shares.
//
// Kinds are listed once, by name, in registry.cc (no static registrars: a
// static library would drop them). Everything that handles a job finds its
// kind here:
//
//   const jobs::JobKind* kind = jobs::Kinds().For(spec);
//   if (kind == nullptr) return InvalidArgument("unknown job kind");
//   kind->FillTask(spec, index, env, &task);
//
// The limits are the single home of each bound: the coordinator refuses a
// job past them and the command line's flag ranges are these constants.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "jobs/kind.h"

namespace fanout::jobs {

inline constexpr uint32_t kMaxTasksPerJob = 10'000'000;
inline constexpr uint32_t kMaxConcurrency = 10'000;
inline constexpr uint32_t kMaxAttempts = 100;
inline constexpr uint32_t kMaxTaskTimeoutMs = 7 * 24 * 3'600'000;  // a week
// Where workers' slots bind, free slots go to the highest priority first.
inline constexpr uint32_t kMaxPriority = 9;
inline constexpr uint32_t kDefaultPriority = 5;
// A job's spec travels in one frame (URLs, items, the command).
inline constexpr size_t kMaxSpecBytes = kMaxFrameBytes - 4096;

class Registry {
 public:
  explicit Registry(std::vector<std::unique_ptr<JobKind>> kinds);

  // nullptr when no kind has that name, spec or payload.
  const JobKind* Find(std::string_view name) const;
  const JobKind* For(const pb::JobSpec& spec) const;
  const JobKind* For(const pb::Task& task) const;
  const std::vector<std::unique_ptr<JobKind>>& all() const { return kinds_; }
  // "math, web, bank or exec"
  std::string Names() const;
  // {"math", "web", "bank", "exec"}: each kind's name at its index.
  std::vector<std::string> NameList() const;
  // The index in all() of a task's kind; all().size() when none.
  size_t IndexOf(const pb::Task& task) const;

 private:
  std::vector<std::unique_ptr<JobKind>> kinds_;
};

// The kinds of this build: math, web, bank, exec.
const Registry& Kinds();

// The kind's name, or "unknown" (for log lines).
std::string_view KindName(const pb::JobSpec& spec);

// OK, or one line saying why the job cannot run: the shared fields, then
// the kind's own.
Status ValidateSpec(const pb::JobSpec& spec);

// A one-line error if the spec would not fit in a frame ("the job's 10000000
// items take 68.7 MiB; a job may carry at most 16.0 MiB: split it").
Status CheckSpecSize(const pb::JobSpec& spec);

}  // namespace fanout::jobs
