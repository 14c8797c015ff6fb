// `fanout pokedex`: the local Pokédex site, served until a signal.
#pragma once

#include <string>

#include "pokedex/site.h"

namespace fanout::pokedex {

struct PokedexOptions {
  std::string host = "127.0.0.1";
  int port = 8081;  // 0: a free port (see ready_file)
  SiteOptions site;
  std::string ready_file;  // {"url": "http://127.0.0.1:8081", "pid": ...} once listening
};

// Serves until `signal_fd` is readable. Returns the exit code.
int RunPokedex(const PokedexOptions& options, int signal_fd);

}  // namespace fanout::pokedex
