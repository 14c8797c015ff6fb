#include "jobs/registry.h"

#include <fmt/format.h>

#include "common/text.h"
#include "jobs/bank/bank.h"
#include "jobs/call/call.h"
#include "jobs/exec/exec.h"
#include "jobs/math/math.h"
#include "jobs/web/web.h"

namespace fanout::jobs {

nlohmann::json PlainValue(const pb::Result& r) {
  switch (r.value_case()) {
    case pb::Result::kNumber:
      return r.number();
    case pb::Result::kText:
      return r.text();
    case pb::Result::kData:
      return Base64(r.data());
    case pb::Result::VALUE_NOT_SET:
      break;
  }
  return nullptr;
}

std::string JobKind::TaskLabel(const pb::JobSpec&, uint32_t index) const {
  return fmt::format("{:02}", index);
}

nlohmann::json JobKind::JsonValue(const pb::JobSpec&, const pb::Result& result) const {
  return PlainValue(result);
}

Registry::Registry(std::vector<std::unique_ptr<JobKind>> kinds) : kinds_(std::move(kinds)) {}

const JobKind* Registry::Find(std::string_view name) const {
  for (const auto& kind : kinds_) {
    if (kind->name() == name) return kind.get();
  }
  return nullptr;
}

const JobKind* Registry::For(const pb::JobSpec& spec) const {
  for (const auto& kind : kinds_) {
    if (kind->spec_case() == spec.kind_case()) return kind.get();
  }
  return nullptr;
}

const JobKind* Registry::For(const pb::Task& task) const {
  for (const auto& kind : kinds_) {
    if (kind->payload_case() == task.payload_case()) return kind.get();
  }
  return nullptr;
}

std::string Registry::Names() const {
  std::string out;
  for (size_t i = 0; i < kinds_.size(); ++i) {
    if (i > 0) out += i + 1 == kinds_.size() ? " or " : ", ";
    out += kinds_[i]->name();
  }
  return out;
}

std::vector<std::string> Registry::NameList() const {
  std::vector<std::string> names;
  for (const auto& kind : kinds_) names.emplace_back(kind->name());
  return names;
}

size_t Registry::IndexOf(const pb::Task& task) const {
  for (size_t i = 0; i < kinds_.size(); ++i) {
    if (kinds_[i]->payload_case() == task.payload_case()) return i;
  }
  return kinds_.size();
}

const Registry& Kinds() {
  static const Registry* registry = [] {
    std::vector<std::unique_ptr<JobKind>> kinds;
    kinds.push_back(std::make_unique<MathKind>());
    kinds.push_back(std::make_unique<WebKind>());
    kinds.push_back(std::make_unique<BankKind>());
    kinds.push_back(std::make_unique<ExecKind>());
    kinds.push_back(std::make_unique<CallKind>());
    return new Registry(std::move(kinds));  // never destroyed: threads may use it at exit
  }();
  return *registry;
}

std::string_view KindName(const pb::JobSpec& spec) {
  const JobKind* kind = Kinds().For(spec);
  return kind != nullptr ? kind->name() : "unknown";
}

Status ValidateSpec(const pb::JobSpec& spec) {
  if (spec.model() != pb::SYNC && spec.model() != pb::THREADS && spec.model() != pb::ASYNC) {
    return InvalidArgument("model must be sync, threads or async");
  }
  if (spec.count() == 0 || spec.count() > kMaxTasksPerJob) {
    return InvalidArgument("count must be between 1 and {} (got {})", kMaxTasksPerJob,
                           spec.count());
  }
  if (spec.concurrency() > kMaxConcurrency) {
    return InvalidArgument("concurrency must be at most {} (got {})", kMaxConcurrency,
                           spec.concurrency());
  }
  if (spec.max_attempts() > kMaxAttempts) {
    return InvalidArgument("max attempts must be at most {} (got {})", kMaxAttempts,
                           spec.max_attempts());
  }
  if (spec.task_timeout_ms() > kMaxTaskTimeoutMs) {
    return InvalidArgument("task timeout must be at most {} ms (got {})", kMaxTaskTimeoutMs,
                           spec.task_timeout_ms());
  }
  if (spec.has_priority() && spec.priority() > kMaxPriority) {
    return InvalidArgument("priority must be between 0 and {} (got {})", kMaxPriority,
                           spec.priority());
  }
  const JobKind* kind = Kinds().For(spec);
  if (kind == nullptr) {
    return InvalidArgument("unknown job kind (this coordinator runs {} jobs)", Kinds().Names());
  }
  return kind->Validate(spec);
}

Status CheckSpecSize(const pb::JobSpec& spec) {
  const size_t bytes = spec.ByteSizeLong();
  if (bytes <= kMaxSpecBytes) return {};
  return InvalidArgument(
      "the job takes {:.1f} MiB ({} tasks); a job may carry at most {:.1f} MiB: split it into "
      "smaller jobs",
      static_cast<double>(bytes) / (1 << 20), spec.count(),
      static_cast<double>(kMaxSpecBytes) / (1 << 20));
}

}  // namespace fanout::jobs
