// The named functions a worker serves (`fanout submit call NAME`): each
// takes its item's bytes and returns bytes (text, usually), or an error,
// which is the task's failure. A C++ program registers them and runs a
// worker with them (examples/reverse_worker.cc); Python workers do the same
// in Python (python/fanout).
//
//   auto functions = std::make_shared<jobs::Functions>();
//   functions->Add("reverse", [](std::string_view s) -> Result<std::string> {
//     return std::string(s.rbegin(), s.rend());
//   });
//   options.functions = functions;   // worker::WorkerOptions
//
// Thread-safety: filled before the worker starts, then read only; a
// function may be called from many threads at once (the threads model).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace fanout::jobs {

using Function = std::function<Result<std::string>(std::string_view arg)>;

// The longest function name.
inline constexpr size_t kMaxFunctionName = 100;

// OK for 1 to kMaxFunctionName letters, digits and "_.-:/"; else why not.
Status CheckFunctionName(std::string_view name);

class Functions {
 public:
  // A bad name, or one already taken, is an error.
  Status Add(std::string name, Function function);
  const Function* Find(std::string_view name) const;
  std::vector<std::string> names() const;
  bool empty() const { return functions_.empty(); }

 private:
  std::map<std::string, Function, std::less<>> functions_;
};

}  // namespace fanout::jobs
