#include "bench/bench_util.h"

#include <unistd.h>

#include <algorithm>

#include "common/subprocess.h"

namespace fanout::bench {
double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

Result<client::JobReport> RunOk(client::JobClient& client, const pb::JobSpec& spec) {
  // Results only, as `fanout submit` without --per-task asks.
  struct Quiet : client::JobObserver {
    bool WantsDispatched() const override { return false; }
  } quiet;
  Result<client::JobReport> report = client.Run(spec, quiet);
  if (report && report->done.ok() != spec.count()) {
    std::string first_error;
    for (const client::TaskRecord& t : report->tasks) {
      if (!t.result.ok()) {
        first_error = t.result.error();
        break;
      }
    }
    return Internal("{} of {} tasks failed (first: {})", spec.count() - report->done.ok(),
                    spec.count(), first_error);
  }
  return report;
}

std::string FanoutNextToUs() {
  const std::string self = SelfExecutable();
  return self.substr(0, self.rfind('/')) + "/fanout";
}

}  // namespace fanout::bench
