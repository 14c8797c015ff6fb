#include "pokedex/pokedex.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/ready_file.h"

namespace fanout::pokedex {

int RunPokedex(const PokedexOptions& options, int signal_fd) {
  Site site(options.site);
  auto server = HttpServer::Listen(options.host, options.port, [&](const HttpRequest& request) {
    HttpResponse response = site.Handle(request);
    spdlog::debug("{} {} -> {} after {:.0f} ms", request.method, request.target, response.status,
                  ToMillis(response.delay));
    return response;
  });
  if (!server) {
    spdlog::error("{}", server.error().message);
    return 1;
  }
  const std::string url = fmt::format("http://{}:{}", options.host, (*server)->port());
  if (!options.ready_file.empty()) {
    if (Status s = WriteReadyFile(options.ready_file, {{"url", url}, {"pid", getpid()}}); !s) {
      spdlog::error("{}", s.error().message);
      return 1;
    }
  }
  spdlog::info(
      "pokedex serving {} pages on {} (latency {:.0f} ms +- {:.0f}, fail rate {}, seed {})",
      Pokedex().size(), url, ToMillis(options.site.latency), ToMillis(options.site.jitter),
      options.site.fail_rate, options.site.seed);
  if (Status s = (*server)->Run(signal_fd); !s) {
    spdlog::error("{}", s.error().message);
    return 1;
  }
  spdlog::info("pokedex stopping after {} requests", site.requests());
  return 0;
}

}  // namespace fanout::pokedex
