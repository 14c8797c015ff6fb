#include "http/metrics.h"

#include <fmt/format.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/subprocess.h"

namespace fanout::http {
namespace {

// When this process started, in seconds since the epoch (/proc: the boot
// time plus the process's start in clock ticks since boot).
double StartTimeSeconds() {
  static const double start = [] {
    std::ifstream stat("/proc/stat");
    double boot = 0;
    for (std::string key; stat >> key;) {
      if (key == "btime") {
        stat >> boot;
        break;
      }
    }
    std::ifstream self("/proc/self/stat");
    const std::string text((std::istreambuf_iterator<char>(self)),
                           std::istreambuf_iterator<char>());
    std::istringstream rest(text.substr(text.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
      if (i == 22) ticks = std::stod(field);
    }
    return boot + ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }();
  return start;
}

}  // namespace

TaskMetrics::TaskMetrics(prometheus::Registry& registry, const std::string& prefix,
                         std::string_view who, std::vector<std::string> kinds)
    : kinds_(std::move(kinds)),
      tasks_(prometheus::BuildCounter()
                 .Name(prefix + "tasks_total")
                 .Help(fmt::format("Tasks ended {}, by job kind, model and outcome (ok or failed)",
                                   who))
                 .Register(registry)),
      seconds_(prometheus::BuildHistogram()
                   .Name(prefix + "task_duration_seconds")
                   .Help(fmt::format("How long tasks ran {}, by job kind", who))
                   .Register(registry)) {
  kinds_.resize(std::min(kinds_.size(), TaskCounts::kKinds));
  for (const std::string& kind : kinds_) {
    seconds_.Add({{"kind", kind}}, Bounds(TaskCounts::kDurationBounds));
  }
}

void TaskMetrics::Update(const TaskCounts& now) {
  static constexpr std::array<std::string_view, TaskCounts::kModels> kModels = {"sync", "threads",
                                                                                "async"};
  static constexpr std::array<std::string_view, TaskCounts::kOutcomes> kOutcomes = {"ok", "failed"};
  for (size_t k = 0; k < kinds_.size(); ++k) {
    for (size_t m = 0; m < TaskCounts::kModels; ++m) {
      for (size_t o = 0; o < TaskCounts::kOutcomes; ++o) {
        const uint64_t gained = now.tasks[k][m][o] - last_.tasks[k][m][o];
        if (gained == 0) continue;
        tasks_
            .Add({{"kind", kinds_[k]},
                  {"model", std::string(kModels[m])},
                  {"outcome", std::string(kOutcomes[o])}})
            .Increment(static_cast<double>(gained));
      }
    }
    AddGained(now.seconds[k], last_.seconds[k],
              seconds_.Add({{"kind", kinds_[k]}}, Bounds(TaskCounts::kDurationBounds)));
  }
  last_ = now;
}

std::string Exposition(const prometheus::Registry& registry) {
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  text += fmt::format(
      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
      "# TYPE process_cpu_seconds_total counter\n"
      "process_cpu_seconds_total {:.3f}\n"
      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
      "# TYPE process_resident_memory_bytes gauge\n"
      "process_resident_memory_bytes {:.0f}\n"
      "# HELP process_start_time_seconds Start time of the process since unix epoch in "
      "seconds.\n"
      "# TYPE process_start_time_seconds gauge\n"
      "process_start_time_seconds {:.2f}\n",
      CpuMillis(getpid()) / 1000, RssMiB(getpid()) * 1024 * 1024, StartTimeSeconds());
  return text;
}

Result<ServerOptions> Secured(const std::string& address, const Keys* keys, bool insecure) {
  if (Status s = CheckListen("tcp://" + address, keys != nullptr, insecure); !s) {
    return InvalidArgument("--http: {}", s.error().message);
  }
  ServerOptions options{.address = address};
  if (keys != nullptr) {
    std::ifstream in(keys->token_path());
    std::getline(in, options.token);
    if (options.token.size() < 16) {
      return InvalidArgument("--http: {} holds no token (fanout keygen makes it)",
                             keys->token_path());
    }
  }
  return options;
}

Result<std::unique_ptr<Server>> ServeMetrics(const std::string& address, const Keys* keys,
                                             bool insecure,
                                             std::shared_ptr<prometheus::Registry> registry) {
  Result<ServerOptions> options = Secured(address, keys, insecure);
  if (!options) return options.error();
  options->threads = 2;  // a scraper or two, not a dashboard
  return Server::Start(
      std::move(*options),
      {{"/metrics",
        [registry](const Request&) {
          return Response{200, std::string(kExpositionType), Exposition(*registry)};
        }},
       {"/healthz", [](const Request&) {
          return Response{200, "text/plain", "ok\n"};
        }}});
}

Result<std::unique_ptr<Server>> ServeMetricsIfAsked(const std::string& address, const Keys* keys,
                                                    bool insecure,
                                                    std::shared_ptr<prometheus::Registry> registry,
                                                    std::string_view who) {
  if (address.empty()) return std::unique_ptr<Server>();
  Result<std::unique_ptr<Server>> server = ServeMetrics(address, keys, insecure, registry);
  if (!server && server.error().code == Error::Code::kInvalidArgument) return server.error();
  if (!server) {
    spdlog::warn("{}: {} runs on without /metrics", server.error().message, who);
    return std::unique_ptr<Server>();
  }
  spdlog::info("{} /metrics at {}/metrics", who, (*server)->url());
  return server;
}

}  // namespace fanout::http
