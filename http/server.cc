#include "http/server.h"

#include <civetweb.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <mutex>

#include "common/mutex.h"

namespace fanout::http {
namespace {

constexpr std::string_view kCookie = "fanout_token=";

std::once_flag library_once;

// Constant time in the token's length: a wrong guess says nothing of how
// much of it was right.
bool SameToken(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// Through civetweb's response API, so it knows the length and keeps the
// connection open for the next request (a dashboard polls every second).
void Write(mg_connection* conn, const Response& r,
           const std::vector<std::pair<std::string, std::string>>& extra_headers = {}) {
  mg_response_header_start(conn, r.status);
  mg_response_header_add(conn, "Content-Type", r.content_type.c_str(), -1);
  const std::string length = std::to_string(r.body.size());
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  mg_response_header_add(conn, "X-Content-Type-Options", "nosniff", -1);
  for (const auto& [name, value] : extra_headers) {
    mg_response_header_add(conn, name.c_str(), value.c_str(), -1);
  }
  {
    // civetweb dates each header with gmtime(), whose result is one buffer
    // for the whole process (Debian builds it without REENTRANT_TIME): two
    // handler threads at once could write each other's Date (ThreadSanitizer
    // saw it). One header at a time; the body goes out unlocked.
    static Mutex date_mu;
    MutexLock lock(date_mu);
    mg_response_header_send(conn);
  }
  mg_write(conn, r.body.data(), r.body.size());
}

}  // namespace

std::string QueryValue(std::string_view query, std::string_view name) {
  for (size_t at = 0; at <= query.size();) {
    const size_t end = std::min(query.find('&', at), query.size());
    const std::string_view pair = query.substr(at, end - at);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      const std::string raw(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
      std::string decoded(raw.size() + 1, '\0');
      const int n = mg_url_decode(raw.c_str(), static_cast<int>(raw.size()), decoded.data(),
                                  static_cast<int>(decoded.size()), 1);
      decoded.resize(n < 0 ? 0 : static_cast<size_t>(n));
      return decoded;
    }
    at = end + 1;
  }
  return "";
}

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options,
                                              std::map<std::string, Handler> routes) {
  std::call_once(library_once, [] { mg_init_library(0); });
  std::unique_ptr<Server> server(new Server(std::move(options), std::move(routes)));
  const std::string& address = server->options_.address;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("'{}' is not HOST:PORT", address);
  }
  server->host_ = address.substr(0, colon);
  const std::string threads = std::to_string(server->options_.threads);
  const std::array<const char*, 11> config = {"listening_ports",
                                              address.c_str(),
                                              "num_threads",
                                              threads.c_str(),
                                              "request_timeout_ms",
                                              "10000",
                                              "enable_keep_alive",
                                              "no",
                                              "tcp_nodelay",
                                              "1",
                                              nullptr};
  mg_callbacks callbacks{};
  // civetweb's own messages (a port taken, ...) go to the error below.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  mg_init_data init{&callbacks, server.get(), const_cast<const char**>(config.data())};
  std::array<char, 256> text{};
  unsigned code = 0;
  mg_error_data error{&code, text.data(), text.size()};
  server->ctx_ = mg_start2(&init, &error);
  if (server->ctx_ == nullptr) {
    return Unavailable("cannot serve HTTP on {}: {}", address,
                       text[0] != '\0' ? text.data() : "civetweb did not start");
  }
  std::array<mg_server_port, 4> ports{};
  const int n = mg_get_server_ports(server->ctx_, static_cast<int>(ports.size()), ports.data());
  if (n > 0) server->port_ = ports[0].port;
  mg_set_request_handler(server->ctx_, "/", &Server::Dispatch, server.get());
  return server;
}

Server::~Server() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

std::string Server::url() const {
  const std::string host = host_.empty() || host_ == "0.0.0.0" ? "127.0.0.1" : host_;
  return fmt::format("http://{}:{}", host, port_);
}

int Server::Dispatch(mg_connection* conn, void* self) {
  return static_cast<Server*>(self)->Serve(conn);
}

bool Server::Authorized(mg_connection* conn, const Request& request) const {
  if (options_.token.empty()) return true;
  for (const std::string& open : options_.open_paths) {
    if (request.path == open) return true;
  }
  if (const char* auth = mg_get_header(conn, "Authorization")) {
    const std::string_view value(auth);
    if (value.starts_with("Bearer ") && SameToken(value.substr(7), options_.token)) return true;
  }
  if (const char* cookies = mg_get_header(conn, "Cookie")) {
    const std::string_view all(cookies);
    for (size_t at = all.find(kCookie); at != std::string_view::npos;
         at = all.find(kCookie, at + 1)) {
      if (at != 0 && all[at - 1] != ' ' && all[at - 1] != ';') continue;
      const std::string_view rest = all.substr(at + kCookie.size());
      if (SameToken(rest.substr(0, rest.find(';')), options_.token)) return true;
    }
  }
  return false;
}

int Server::Serve(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  Request request{info->request_method ? info->request_method : "",
                  info->local_uri ? info->local_uri : "",
                  info->query_string ? info->query_string : ""};
  // A browser opens "/?token=..." once: the token becomes a cookie for this
  // host and the address bar forgets it.
  if (!options_.token.empty() && request.path == "/") {
    const std::string token = QueryValue(request.query, "token");
    if (!token.empty() && SameToken(token, options_.token)) {
      Write(
          conn, {303, "text/plain", ""},
          {{"Location", "/"},
           {"Set-Cookie", fmt::format("{}{}; Path=/; HttpOnly; SameSite=Strict", kCookie, token)}});
      return 303;
    }
  }
  if (!Authorized(conn, request)) {
    Write(conn,
          {401, "text/plain",
           "this fanout cluster has keys: send \"Authorization: Bearer TOKEN\" (TOKEN is in "
           "the keys' http.token), or open /?token=TOKEN once\n"},
          {{"WWW-Authenticate", "Bearer realm=\"fanout\""}});
    return 401;
  }
  const Handler* handler = nullptr;
  size_t best = 0;
  for (const auto& [route, h] : routes_) {
    const bool match = route.ends_with('/') && route.size() > 1 ? request.path.starts_with(route)
                                                                : request.path == route;
    if (match && route.size() >= best) {
      handler = &h;
      best = route.size();
    }
  }
  if (handler == nullptr) {
    Write(conn, {404, "text/plain", fmt::format("no page {}\n", request.path)});
    return 404;
  }
  Response response;
  try {
    response = (*handler)(request);
  } catch (const std::exception& e) {
    spdlog::error("http: {} {}: {}", request.method, request.path, e.what());
    response = {500, "text/plain", "internal error\n"};
  }
  Write(conn, response);
  return response.status;
}

}  // namespace fanout::http
