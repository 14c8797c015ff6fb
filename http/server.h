// A small HTTP side for fanout's processes (the coordinator's dashboard,
// /metrics and /api), on civetweb's threads, never on a process loop's.
//
// Routes are exact paths, or prefixes when they end in '/'. Handlers run on
// civetweb's worker threads, so they must only read what the loop publishes
// (a Snapshot behind a shared_ptr), never the loop's own state.
//
//   auto http = Server::Start({.address = "127.0.0.1:5580", .token = token},
//                             {{"/metrics", [&](const Request&) { return Metrics(); }}});
//   if (!http) spdlog::warn("{}: running without HTTP", http.error().message);
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct mg_context;
struct mg_connection;

namespace fanout::http {

struct Request {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', undecoded
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string address;  // HOST:PORT (PORT 0: any free one)
  // When set, every request must carry it: "Authorization: Bearer TOKEN", or
  // the cookie a browser gets from opening "/?token=TOKEN" once.
  std::string token = {};
  int threads = 8;
  // Paths that answer without the token (health checks carry none).
  std::vector<std::string> open_paths = {"/healthz"};
};

class Server {
 public:
  // A port already taken, or an address that cannot be listened on, is an
  // error saying which.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options,
                                               std::map<std::string, Handler> routes);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port it listens on (the one chosen, for port 0).
  int port() const { return port_; }
  // "http://HOST:PORT".
  std::string url() const;

 private:
  explicit Server(ServerOptions options, std::map<std::string, Handler> routes)
      : options_(std::move(options)), routes_(std::move(routes)) {}
  static int Dispatch(mg_connection* conn, void* self);
  int Serve(mg_connection* conn);
  bool Authorized(mg_connection* conn, const Request& request) const;

  ServerOptions options_;
  std::map<std::string, Handler> routes_;
  mg_context* ctx_ = nullptr;
  std::string host_;
  int port_ = 0;
};

// The value of `name` in a query string ("a=1&b=2"), percent-decoded.
std::string QueryValue(std::string_view query, std::string_view name);

}  // namespace fanout::http
