#include "jobs/call/call.h"

#include <fmt/format.h>

#include "common/text.h"
#include "jobs/call/functions.h"
#include "jobs/flags.h"

namespace fanout::jobs {
namespace {

class CallFlags final : public SubmitFlags {
 public:
  explicit CallFlags(CLI::App& cmd) : items_(cmd) {
    cmd.add_option("name", name_, "the function's name, as its workers serve it")->required();
  }

  Status Fill(pb::JobSpec& spec) const override {
    if (Status s = CheckFunctionName(name_); !s) return s;
    pb::CallJob* job = spec.mutable_call();
    job->set_name(name_);
    Status items = items_.Collect(job->mutable_items(), job->ByteSizeLong(),
                                  [](const std::string&, size_t) { return Status(); });
    if (!items) return items;
    spec.set_count(static_cast<uint32_t>(job->items_size()));
    return {};
  }

 private:
  ItemFlags items_;
  std::string name_;
};

// Runs a worker's functions; a function's error or exception is the task's.
class CallRunner final : public Runner {
 public:
  explicit CallRunner(std::shared_ptr<const Functions> functions)
      : functions_(std::move(functions)) {}

  bool enabled() const override { return functions_ != nullptr && !functions_->empty(); }

  void RunBlocking(const pb::Task& task, pb::Result& result, std::stop_token) override {
    const Function* function = functions_ ? functions_->Find(task.call().name()) : nullptr;
    if (function == nullptr) {
      result.set_ok(false);
      result.set_error(fmt::format("this worker does not serve '{}'", task.call().name()));
      return;
    }
    Result<std::string> value = InvalidArgument("no value");
    try {
      value = (*function)(task.call().arg());
    } catch (const std::exception& e) {
      value = InvalidArgument("{}: exception: {}", task.call().name(), e.what());
    } catch (...) {
      value = InvalidArgument("{}: an exception that is not a std::exception", task.call().name());
    }
    if (!value) {
      result.set_ok(false);
      result.set_error(value.error().message);
      return;
    }
    result.set_ok(true);
    IsUtf8(*value) ? result.set_text(std::move(*value)) : result.set_data(std::move(*value));
  }

  // A C++ function holds the loop while it runs, as CPU work does in asyncio.
  co::Task<void> RunAsync(const pb::Task& task, pb::Result& result, AsyncEnv&,
                          std::stop_token stop) override {
    RunBlocking(task, result, std::move(stop));
    co_return;
  }

 private:
  std::shared_ptr<const Functions> functions_;
};

}  // namespace

Status CheckFunctionName(std::string_view name) {
  if (name.empty()) return InvalidArgument("a function needs a name");
  if (name.size() > kMaxFunctionName) {
    return InvalidArgument("a function's name has at most {} characters (this one has {})",
                           kMaxFunctionName, name.size());
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-' || c == ':' || c == '/';
    if (!ok) {
      return InvalidArgument("'{}' is not a function name: letters, digits and _ . - : / only",
                             Ellipsize(name, 40));
    }
  }
  return {};
}

Status Functions::Add(std::string name, Function function) {
  if (Status s = CheckFunctionName(name); !s) return s;
  if (!function) return InvalidArgument("function '{}' is empty", name);
  auto [it, fresh] = functions_.try_emplace(std::move(name), std::move(function));
  if (!fresh) return InvalidArgument("function '{}' is served twice", it->first);
  return {};
}

const Function* Functions::Find(std::string_view name) const {
  auto it = functions_.find(name);
  return it == functions_.end() ? nullptr : &it->second;
}

std::vector<std::string> Functions::names() const {
  std::vector<std::string> out;
  for (const auto& [name, function] : functions_) out.push_back(name);
  return out;
}

std::unique_ptr<SubmitFlags> CallKind::AddSubmitFlags(CLI::App& cmd) const {
  return std::make_unique<CallFlags>(cmd);
}

Status CallKind::Validate(const pb::JobSpec& spec) const {
  const pb::CallJob& job = spec.call();
  if (Status s = CheckFunctionName(job.name()); !s) return s;
  if (static_cast<uint32_t>(job.items_size()) != spec.count()) {
    return InvalidArgument("a call job has one item per task ({} items for {} tasks)",
                           job.items_size(), spec.count());
  }
  return {};
}

void CallKind::FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv&,
                        pb::Task* task) const {
  pb::Call* call = task->mutable_call();
  call->set_name(spec.call().name());
  call->set_arg(spec.call().items(static_cast<int>(index - 1)));
}

Result<std::unique_ptr<Runner>> CallKind::NewRunner(const WorkerEnv& env) const {
  return std::unique_ptr<Runner>(std::make_unique<CallRunner>(env.functions));
}

std::string CallKind::StartLine(const pb::JobSpec& spec, uint32_t index) const {
  const std::string& item = spec.call().items(static_cast<int>(index - 1));
  return fmt::format("Calling {:02}: {}({})...", index, spec.call().name(),
                     IsUtf8(item) ? Ellipsize(item, 60) : fmt::format("{} bytes", item.size()));
}

std::string CallKind::DoneLine(const pb::JobSpec&, uint32_t index, const pb::Result& r) const {
  if (!r.ok()) return fmt::format("Failed {:02}: {}", index, r.error());
  const std::string value =
      r.has_data() ? fmt::format("({} bytes, not text)", r.data().size()) : Ellipsize(r.text(), 60);
  return fmt::format("Done {:02}: {}", index, value);
}

}  // namespace fanout::jobs
