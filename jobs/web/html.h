// Reading the value of a web task out of a page: the text of its first <h1>.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace fanout::jobs::web {

// The text of the first <h1> anywhere in `html`, in document order: nested
// tags flattened (<br> counts as a space, <script> and <style> as nothing),
// entities decoded, runs of whitespace collapsed to one space, trimmed.
// Parsed by gumbo as a browser would, so broken markup still yields an
// answer; bytes that are not UTF-8 become U+FFFD, so the text is always
// valid UTF-8. nullopt when the page has no <h1>.
std::optional<std::string> FirstH1Text(std::string_view html);

}  // namespace fanout::jobs::web
