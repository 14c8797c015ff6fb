// libFuzzer entry for authorized_keys (see targets.h).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fanout::fuzz::Authorized({reinterpret_cast<const char*>(data), size});
  return 0;
}
