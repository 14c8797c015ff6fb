// Small text and number helpers shared by the site, the timelines, the
// job kinds and the printers.
#pragma once

#include <fmt/format.h>

#include <cmath>
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

// Whether `text` is well-formed UTF-8 (what a proto3 string must hold).
bool IsUtf8(std::string_view text);

// `text` with every byte that is not part of well-formed UTF-8 replaced by
// U+FFFD, so that it can travel in a proto3 string.
std::string ToUtf8(std::string_view text);

// Standard base64 (RFC 4648, with padding).
std::string Base64(std::string_view bytes);

// At most `width` characters (UTF-8 code points) of `text`, the last one an
// ellipsis when it was cut; new lines and tabs shown as spaces.
std::string Ellipsize(std::string_view text, size_t width);

// A number as Python's repr prints a float: 2000001.0, 0.1, 1e+16.
inline std::string PythonFloat(double x) {
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 1e16) {
    return fmt::format("{:.1f}", x);
  }
  return fmt::format("{}", x);
}

}  // namespace fanout
