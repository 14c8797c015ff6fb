// The version of this build, as in `fanout --version` and Hello.
#pragma once

#include <string_view>

namespace fanout {

inline constexpr std::string_view kVersion = FANOUT_VERSION;

}  // namespace fanout
