// Ready files: a long-running process writes one JSON object (its bound
// endpoints, its pid) once it is listening, so a script or test that started
// it on a free port knows where it is and that it is up. Written to a
// temporary name and renamed, so a reader never sees half a file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace fanout {

Status WriteReadyFile(const std::string& path, const nlohmann::json& contents);

}  // namespace fanout
