// The local Pokédex site: the pages, its routes and its faults, as pure
// functions of the request (the server around it is http_server.h).
//
//   /pokedex/25       301 to /pokedex/pikachu, as on pokemondb.net
//   /pokedex/pikachu  a full HTML page with one <h1>Pikachu</h1>
//   /healthz          "ok", at once (no latency, no faults)
//   /                 an index of every page
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "pokedex/http_server.h"

namespace fanout::pokedex {

struct Pokemon {
  int number;
  std::string name;  // "Nidoran♀"
  std::string slug;  // "nidoran-f"
};

// The 151 entries compiled from pokedex-151.tsv, by number.
const std::vector<Pokemon>& Pokedex();

// pokemondb.net's URL name: "Mr. Mime" -> "mr-mime", "Nidoran♀" -> "nidoran-f".
std::string Slug(std::string_view name);

struct SiteOptions {
  Duration latency{};       // every answer but /healthz waits this long
  Duration jitter{};        // +- uniformly
  double fail_rate = 0;     // this share of requests answer 503
  uint32_t fail_first = 0;  // the first N requests to each page (its number or its name) answer 503
  uint64_t seed = 1;
};

// Whether the n-th request (1-based) to `path` fails at `rate`: a hash of
// (seed, path, n), so a run is reproducible whatever order requests come in.
bool FailsAt(uint64_t seed, std::string_view path, uint64_t n, double rate);

class Site {
 public:
  explicit Site(SiteOptions options);
  HttpResponse Handle(const HttpRequest& request);  // one thread at a time
  uint64_t requests() const { return requests_; }

 private:
  // The page a path shows: "/pokedex/25" is "/pokedex/pikachu".
  std::string CanonicalPath(std::string_view path) const;
  HttpResponse Route(std::string_view path) const;
  Duration Latency();

  SiteOptions options_;
  std::unordered_map<std::string, const Pokemon*> by_slug_;
  std::unordered_map<std::string, uint64_t> seen_;  // requests per path
  std::mt19937_64 rng_;
  uint64_t requests_ = 0;
};

}  // namespace fanout::pokedex
