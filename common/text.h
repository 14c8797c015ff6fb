// Small text and number helpers shared by the site, the timelines and the
// job planner.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fanout {

// Text made safe inside HTML or SVG: & < > " escaped.
inline std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// splitmix64's finaliser: a well-mixed 64-bit hash of `x`, the same on every
// machine (for reproducible seeded choices).
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace fanout
