// `fanout health TARGET`: is a fanout service up and answering? For
// container health checks (the image has no shell and no curl).
//
//   fanout health tcp://127.0.0.1:5556         coordinator (clients side) or ledger
//   fanout health http://127.0.0.1:8081/healthz  the Pokédex site
#include <curl/curl.h>

#include <memory>

#include "cli/commands.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/transport.h"

namespace fanout::cli {
namespace {

// A fanout service answers anything it is sent, if only with an Error.
Status AskZeroMq(const std::string& endpoint, Duration timeout) {
  zmq::context_t ctx(1);
  zmq::socket_t dealer = MakeSocket(ctx, zmq::socket_type::dealer);
  if (Status s = Connect(dealer, endpoint); !s) return s;
  pb::Envelope ask = NewEnvelope();
  ask.mutable_status();
  if (!Send(dealer, ask)) return Unavailable("cannot queue a message for {}", endpoint);
  std::vector<zmq::pollitem_t> items = {{dealer.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, std::chrono::ceil<milliseconds>(timeout));
  Message msg;
  if (!RecvMessage(dealer, msg)) {
    return Unavailable("{} did not answer within {:.1f} s", endpoint, ToMillis(timeout) / 1000);
  }
  for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
    if (Decode(frame)) return {};
  }
  return Unavailable("{} answered, but not in fanout's protocol", endpoint);
}

Status AskHttp(const std::string& url, Duration timeout) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Internal("libcurl could not start");
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(ToMillis(timeout)));
  const CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) return Unavailable("{}: {}", url, curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return Unavailable("{}: HTTP {}", url, status);
  return {};
}

}  // namespace

Command AddHealth(CLI::App& app, const GlobalFlags&) {
  CLI::App* cmd = app.add_subcommand(
      "health", "Exit 0 if a fanout service answers (for container health checks), else 3");
  auto target = std::make_shared<std::string>();
  auto timeout_ms = std::make_shared<int>(2000);
  cmd->add_option(
         "target", *target,
         "tcp://host:port (coordinator's clients side, ledger) or http://host:port/healthz")
      ->required();
  cmd->add_option("--timeout-ms", *timeout_ms, "give up after this long")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  return {cmd, [target, timeout_ms] {
            const Duration timeout = milliseconds(*timeout_ms);
            const bool http = target->rfind("http://", 0) == 0 || target->rfind("https://", 0) == 0;
            const Status s = http ? AskHttp(*target, timeout) : AskZeroMq(*target, timeout);
            if (!s) {
              fmt::print(stderr, "fanout health: {}\n", s.error().message);
              return kExitUnreachable;
            }
            fmt::print("{} is up\n", *target);
            return kExitOk;
          }};
}

}  // namespace fanout::cli
