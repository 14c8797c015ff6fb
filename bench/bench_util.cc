#include "bench/bench_util.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/subprocess.h"

namespace fanout::bench {
namespace {

double StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1));
  }
  return 0;
}

}  // namespace

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

Result<client::JobReport> RunOk(client::JobClient& client, const pb::JobSpec& spec) {
  client::JobObserver quiet;
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

double CpuMillis(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after ')'.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double RssMiB(pid_t pid) { return StatusKiB(pid, "VmRSS") / 1024; }
double PeakRssMiB(pid_t pid) { return StatusKiB(pid, "VmHWM") / 1024; }

}  // namespace fanout::bench
