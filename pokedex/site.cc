#include "pokedex/site.h"

#include <fmt/format.h>

#include <charconv>

#include "common/text.h"

namespace fanout::pokedex {

extern const std::string_view kPokedexTsv;

namespace {

std::vector<Pokemon> Parse(std::string_view tsv) {
  std::vector<Pokemon> out;
  while (!tsv.empty()) {
    const size_t eol = tsv.find('\n');
    std::string_view line = tsv.substr(0, eol);
    tsv = eol == std::string_view::npos ? "" : tsv.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t tab = line.find('\t');
    int number = 0;
    if (tab == std::string_view::npos) continue;
    auto [ptr, ec] = std::from_chars(line.data(), line.data() + tab, number);
    if (ec != std::errc() || ptr != line.data() + tab) continue;  // the header line
    std::string name(line.substr(tab + 1));
    out.push_back({number, name, Slug(name)});
  }
  return out;
}

std::string Page(const Pokemon& p) {
  const std::vector<Pokemon>& all = Pokedex();
  std::string nav = R"(<a href="/">Pokédex</a>)";
  if (p.number > 1) {
    const Pokemon& prev = all[p.number - 2];
    nav += fmt::format(R"( <a href="/pokedex/{}">&lsaquo; #{:04} {}</a>)", prev.slug, prev.number,
                       HtmlEscape(prev.name));
  }
  if (p.number < static_cast<int>(all.size())) {
    const Pokemon& next = all[p.number];
    nav += fmt::format(R"( <a href="/pokedex/{}">#{:04} {} &rsaquo;</a>)", next.slug, next.number,
                       HtmlEscape(next.name));
  }
  const std::string name = HtmlEscape(p.name);
  return fmt::format(R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{0} Pokédex: stats, moves, evolution &amp; locations | Pokémon Database</title>
</head>
<body>
<nav class="main-menu">{1}</nav>
<main>
<h1>{0}</h1>
<p>{0} is a Pokémon introduced in Generation 1.</p>
<table class="vitals-table">
<tbody>
<tr><th>National №</th><td><strong>{2:04}</strong></td></tr>
<tr><th>Name</th><td>{0}</td></tr>
<tr><th>Local URL</th><td><a href="/pokedex/{3}">/pokedex/{3}</a></td></tr>
</tbody>
</table>
</main>
</body>
</html>
)",
                     name, nav, p.number, p.slug);
}

std::string Index() {
  std::string items;
  for (const Pokemon& p : Pokedex()) {
    items += fmt::format("<li><a href=\"/pokedex/{}\">#{:04} {}</a></li>\n", p.number, p.number,
                         HtmlEscape(p.name));
  }
  return fmt::format(R"(<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Pokédex | Pokémon Database</title></head>
<body>
<main>
<h1>Pokédex</h1>
<ul>
{}</ul>
</main>
</body>
</html>
)",
                     items);
}

HttpResponse NotFound(std::string_view path) {
  return Html(404, fmt::format("<!DOCTYPE html>\n<html><head><title>Not found</title></head>"
                               "<body><p>No page at {}</p></body></html>\n",
                               HtmlEscape(path)));
}

}  // namespace

const std::vector<Pokemon>& Pokedex() {
  static const std::vector<Pokemon> all = Parse(kPokedexTsv);
  return all;
}

std::string Slug(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const std::string_view rest = name.substr(i);
    if (rest.starts_with("♀")) {
      out += "-f";
      i += std::string_view("♀").size() - 1;
    } else if (rest.starts_with("♂")) {
      out += "-m";
      i += std::string_view("♂").size() - 1;
    } else if (name[i] == ' ') {
      out += '-';
    } else if (std::isalnum(static_cast<unsigned char>(name[i]))) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    }  // anything else (' . :) is dropped
  }
  return out;
}

bool FailsAt(uint64_t seed, std::string_view path, uint64_t n, double rate) {
  if (rate <= 0) return false;
  uint64_t h = Mix64(seed);
  for (unsigned char c : path) h = Mix64(h ^ c);
  h = Mix64(h ^ n);
  return static_cast<double>(h >> 11) * 0x1.0p-53 < rate;
}

Site::Site(SiteOptions options) : options_(options), rng_(options.seed) {
  for (const Pokemon& p : Pokedex()) by_slug_.emplace(p.slug, &p);
}

Duration Site::Latency() {
  if (options_.jitter <= Duration::zero()) return options_.latency;
  std::uniform_int_distribution<int64_t> d(-options_.jitter.count(), options_.jitter.count());
  return std::max(Duration::zero(), options_.latency + Duration(d(rng_)));
}

HttpResponse Site::Handle(const HttpRequest& request) {
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  if (path == "/healthz") {
    return Text(200, "ok\n");
  }
  ++requests_;
  HttpResponse response;
  // Faults count per page: a number and the name it redirects to are one
  // page, so a client retrying a numbered URL meets the same first failures.
  const uint64_t n = ++seen_[CanonicalPath(path)];
  if (request.method != "GET" && request.method != "HEAD") {
    response = Text(405, "GET only\n");
    response.headers.emplace_back("Allow", "GET, HEAD");
  } else if (n <= options_.fail_first || FailsAt(options_.seed, path, n, options_.fail_rate)) {
    response = Html(503,
                    "<!DOCTYPE html>\n<html><head><title>503</title></head>"
                    "<body><p>Service Unavailable (injected)</p></body></html>\n");
    response.headers.emplace_back("Retry-After", "0");
  } else {
    response = Route(path);
  }
  response.delay = Latency();
  return response;
}

std::string Site::CanonicalPath(std::string_view path) const {
  constexpr std::string_view kPrefix = "/pokedex/";
  if (!path.starts_with(kPrefix)) return std::string(path);
  std::string_view rest = path.substr(kPrefix.size());
  int number = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), number);
  if (ec != std::errc() || ptr != rest.data() + rest.size() || number < 1 ||
      number > static_cast<int>(Pokedex().size())) {
    return std::string(path);
  }
  return fmt::format("/pokedex/{}", Pokedex()[number - 1].slug);
}

HttpResponse Site::Route(std::string_view path) const {
  if (path == "/" || path == "/pokedex" || path == "/pokedex/") return Html(200, Index());
  constexpr std::string_view kPrefix = "/pokedex/";
  if (!path.starts_with(kPrefix)) return NotFound(path);
  std::string_view rest = path.substr(kPrefix.size());
  int number = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), number);
  if (ec == std::errc() && ptr == rest.data() + rest.size()) {
    if (number < 1 || number > static_cast<int>(Pokedex().size())) return NotFound(path);
    const Pokemon& p = Pokedex()[number - 1];
    HttpResponse moved = Html(301, fmt::format("<a href=\"/pokedex/{}\">Moved</a>\n", p.slug));
    moved.headers.emplace_back("Location", fmt::format("/pokedex/{}", p.slug));
    return moved;
  }
  auto it = by_slug_.find(std::string(rest));
  if (it == by_slug_.end()) return NotFound(path);
  return Html(200, Page(*it->second));
}

}  // namespace fanout::pokedex
