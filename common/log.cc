#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace fanout {

Status InitLogging(std::string_view process, std::string_view level) {
  const auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '{}' (trace, debug, info, warn, error, off)", level);
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
      std::getenv("NO_COLOR") ? spdlog::color_mode::never : spdlog::color_mode::automatic);
  auto logger = std::make_shared<spdlog::logger>(std::string(process), std::move(sink));
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %n[%P] %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(std::move(logger));
  return {};
}

std::string SkippedNote(uint64_t skipped) {
  return skipped == 0 ? std::string() : fmt::format(" (and {} more like it before)", skipped);
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

unsigned Cores() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace fanout
