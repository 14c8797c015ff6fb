#include "common/ready_file.h"

#include <cstdio>
#include <fstream>

namespace fanout {

Status WriteReadyFile(const std::string& path, const nlohmann::json& contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << contents.dump() << "\n";
    if (!out) return Internal("cannot write {}", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Internal("cannot rename {}", tmp);
  return {};
}

}  // namespace fanout
