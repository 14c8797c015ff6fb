// Output for people: ANSI styles that switch themselves off when the stream is
// not a terminal or NO_COLOR is set (https://no-color.org).
//
//   Style style = Style::For(stdout);
//   fmt::print("{}\n", style.Green("Retrieved 01=Bulbasaur"));
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace fanout {

class Style {
 public:
  static Style For(std::FILE* stream);
  explicit Style(bool enabled) : enabled_(enabled) {}

  bool enabled() const { return enabled_; }
  std::string Bold(std::string_view s) const { return Wrap("1", s); }
  std::string Dim(std::string_view s) const { return Wrap("2", s); }
  std::string Red(std::string_view s) const { return Wrap("31", s); }
  std::string Green(std::string_view s) const { return Wrap("32", s); }
  std::string Yellow(std::string_view s) const { return Wrap("33", s); }
  std::string Blue(std::string_view s) const { return Wrap("34", s); }
  std::string Cyan(std::string_view s) const { return Wrap("36", s); }

 private:
  std::string Wrap(std::string_view code, std::string_view s) const;
  bool enabled_;
};

// "1.84 s", "231.4 ms", "85 us": a duration in the unit that reads best.
std::string HumanDuration(double millis);
// "12.3k", "1.2M": a rate or count for a progress line.
std::string HumanCount(double n);

}  // namespace fanout
