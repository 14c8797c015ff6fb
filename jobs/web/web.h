// The web job: fetch one page per task and return the text of its first
// <h1> (fetch.h). I/O-bound: threads and coroutines overlap the waits.
// Pages come from a URL template ("{n}" is the page number: start + i - 1
// for task i) or from a list of URLs.
#pragma once

#include "jobs/kind.h"

namespace fanout::jobs {

namespace web {
inline constexpr uint32_t kMaxUrlBytes = 8192;
inline constexpr uint32_t kMaxRetries = 20;
inline constexpr uint64_t kMaxBodyBytes = uint64_t{1} << 30;  // a page is held in memory
inline constexpr uint32_t kMaxTimeoutMs = 600'000;

// The URL of page `number` from a template: every "{n}" replaced.
std::string ExpandTemplate(const std::string& url_template, int64_t number);
}  // namespace web

class WebKind final : public JobKind {
 public:
  std::string_view name() const override { return "web"; }
  pb::JobSpec::KindCase spec_case() const override { return pb::JobSpec::kWeb; }
  pb::Task::PayloadCase payload_case() const override { return pb::Task::kFetchPage; }
  std::string_view summary() const override {
    return "fetch pages and return each one's first <h1>";
  }
  std::unique_ptr<SubmitFlags> AddSubmitFlags(CLI::App& cmd) const override;
  Status Validate(const pb::JobSpec& spec) const override;
  void FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv& env,
                pb::Task* task) const override;
  Result<std::unique_ptr<Runner>> NewRunner(const WorkerEnv& env) const override;
  std::string StartLine(const pb::JobSpec& spec, uint32_t index) const override;
  std::string DoneLine(const pb::JobSpec& spec, uint32_t index,
                       const pb::Result& result) const override;
  std::string TaskLabel(const pb::JobSpec& spec, uint32_t index) const override;
};

}  // namespace fanout::jobs
