#include "common/term.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>

namespace fanout {

Style Style::For(std::FILE* stream) {
  const char* no_color = std::getenv("NO_COLOR");
  const bool wanted = no_color == nullptr || no_color[0] == '\0';
  return Style(wanted && isatty(fileno(stream)) == 1);
}

std::string Style::Wrap(std::string_view code, std::string_view s) const {
  if (!enabled_) return std::string(s);
  return fmt::format("\x1b[{}m{}\x1b[0m", code, s);
}

std::string HumanDuration(double millis) {
  if (millis >= 1000.0) return fmt::format("{:.2f} s", millis / 1000.0);
  if (millis >= 1.0) return fmt::format("{:.1f} ms", millis);
  return fmt::format("{:.0f} us", millis * 1000.0);
}

std::string HumanCount(double n) {
  if (n >= 1e6) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 1e4) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

}  // namespace fanout
