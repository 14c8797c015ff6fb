// `fanout health TARGET`: is a fanout service up and answering? For
// container health checks (the image has no shell and no curl).
//
//   fanout health tcp://127.0.0.1:5556         coordinator (clients side) or ledger
//   fanout health http://127.0.0.1:8081/healthz  the Pokédex site
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/security.h"
#include "common/transport.h"
#include "http/fetch.h"

namespace fanout::cli {
namespace {

// A fanout service answers anything it is sent, if only with an Error.
// With keys, the target is `servers` (the coordinator, the ledger, or
// either: one socket for each server key, and the first answer wins; the
// other's failed handshake counts as a refusal there, so health checks name
// their server).
Status AskZeroMq(const std::string& endpoint, Duration timeout, const Keys* keys,
                 const std::vector<Role>& servers) {
  zmq::context_t ctx(1);
  struct Try {
    zmq::socket_t socket;
    HandshakeWatch handshakes;
  };
  std::vector<std::unique_ptr<Try>> tries;
  std::string why;  // what a keyed socket could not do
  for (Role server : servers) {
    if (keys == nullptr && !tries.empty()) break;  // one plain socket
    zmq::socket_t socket = MakeSocket(ctx, zmq::socket_type::dealer);
    if (Status s = PrepareClient(socket, keys, server); !s) {
      why = s.error().message;
      continue;
    }
    HandshakeWatch watch = HandshakeWatch::Client(ctx, socket, endpoint, "client", keys != nullptr);
    tries.push_back(std::make_unique<Try>(Try{std::move(socket), std::move(watch)}));
  }
  if (tries.empty()) return InvalidArgument("{}", why);
  pb::Envelope ask = NewEnvelope();
  ask.mutable_status();
  for (auto& t : tries) {
    if (Status s = Connect(t->socket, endpoint); !s) return s;
    if (!Send(t->socket, ask)) return Unavailable("cannot queue a message for {}", endpoint);
  }
  const TimePoint give_up = Now() + timeout;
  Message msg;
  while (Now() < give_up) {
    std::vector<zmq::pollitem_t> items;
    for (auto& t : tries) {
      items.push_back({t->socket.handle(), 0, ZMQ_POLLIN, 0});
      items.push_back({t->handshakes.monitor().handle(), 0, ZMQ_POLLIN, 0});
    }
    zmq::poll(items, std::chrono::ceil<milliseconds>(give_up - Now()));
    size_t refused = 0;
    for (auto& t : tries) {
      t->handshakes.Poll();
      if (!t->handshakes.refused().empty()) ++refused;
      if (!RecvMessage(t->socket, msg)) continue;
      for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
        if (Decode(frame)) return {};
      }
      return Unavailable("{} answered, but not in fanout's protocol", endpoint);
    }
    if (refused == tries.size()) break;
  }
  for (auto& t : tries) {
    const std::string explained = t->handshakes.Explain(timeout);
    if (!explained.empty() && (why.empty() || !t->handshakes.refused().empty())) why = explained;
  }
  if (!why.empty()) return Unavailable("{}", why);
  return Unavailable("{} did not answer within {:.1f} s", endpoint, ToMillis(timeout) / 1000);
}

Status AskHttp(const std::string& url, Duration timeout) {
  const http::Fetched got = http::Fetch(url, {}, "HEAD", timeout);
  if (got.status == 0) return Unavailable("{}: {}", url, got.error);
  if (got.status != 200) return Unavailable("{}: HTTP {}", url, got.status);
  return {};
}

}  // namespace

Command AddHealth(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "health", "Exit 0 if a fanout service answers (for container health checks), else 3");
  auto target = std::make_shared<std::string>();
  auto timeout_ms = std::make_shared<int>(2000);
  auto server = std::make_shared<std::string>("any");
  cmd->add_option(
         "target", *target,
         "tcp://host:port (coordinator's clients side, ledger) or http://host:port/healthz")
      ->required();
  cmd->add_option("--timeout-ms", *timeout_ms, "give up after this long")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  cmd->add_option("--server", *server,
                  "with --keys, which server key TARGET has (any: try both; a health check "
                  "names its own, as a wrong one counts as a refused handshake there)")
      ->check(CLI::IsMember({"any", "coordinator", "ledger"}))
      ->capture_default_str();
  return {cmd, [target, timeout_ms, server, &global] {
            const Duration timeout = milliseconds(*timeout_ms);
            const bool http = target->rfind("http://", 0) == 0 || target->rfind("https://", 0) == 0;
            // Whichever key this host has: a client's, or the server's own.
            Role role = Role::kClient;
            for (Role r : {Role::kClient, Role::kCoordinator, Role::kLedger, Role::kWorker}) {
              if (std::filesystem::exists(fmt::format("{}/{}.key", global.keys, RoleName(r)))) {
                role = r;
                break;
              }
            }
            std::optional<std::shared_ptr<const Keys>> keys = TakeKeys(global, role, "health");
            if (!keys) return kExitUsage;
            const Status s =
                http ? AskHttp(*target, timeout)
                     : AskZeroMq(*target, timeout, keys->get(),
                                 *server == "coordinator" ? std::vector{Role::kCoordinator}
                                 : *server == "ledger"
                                     ? std::vector{Role::kLedger}
                                     : std::vector{Role::kCoordinator, Role::kLedger});
            if (!s) {
              fmt::print(stderr, "fanout health: {}\n", s.error().message);
              return kExitUnreachable;
            }
            fmt::print("{} is up\n", *target);
            return kExitOk;
          }};
}

}  // namespace fanout::cli
