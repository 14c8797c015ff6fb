// A small HTTP/1.1 server on one epoll thread, for the local Pokédex site.
//
// Responses may be delayed (the site's latency): a delayed response is a
// timer, not a sleeping thread, so one thread holds thousands of slow
// requests at once. Keep-alive, HEAD and request bodies (read and ignored)
// are handled; anything else malformed gets a 400 and the connection closes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace fanout::pokedex {

struct HttpRequest {
  std::string method;
  std::string target;  // "/pokedex/25"
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = true;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Location
  Duration delay{};                                          // sent this long after the request
};

HttpResponse Html(int status, std::string body);
HttpResponse Text(int status, std::string body);

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Parses one request from the front of `buffer`. Returns the bytes it used
// (request line, headers and body), 0 when more bytes are needed, or an
// error for a malformed request.
Result<size_t> ParseRequest(std::string_view buffer, HttpRequest& out);

// The bytes of a response: status line, headers, body (none for HEAD).
std::string SerializeResponse(const HttpResponse& response, bool keep_alive, bool head);

class HttpServer {
 public:
  // Listens on host:port (port 0: a free one) with a deep accept backlog.
  static Result<std::unique_ptr<HttpServer>> Listen(const std::string& host, int port,
                                                    HttpHandler handler);
  ~HttpServer();

  int port() const { return port_; }
  // Serves until `stop_fd` becomes readable (a signalfd or eventfd).
  Status Run(int stop_fd);

 private:
  struct Conn;
  HttpServer(int listen_fd, int port, HttpHandler handler);
  void Accept();
  void OnReadable(Conn& conn);
  void Advance(Conn& conn);  // answers the next buffered request, if any
  void Flush(Conn& conn);
  void Close(uint64_t id);

  int listen_fd_;
  int epoll_fd_;
  int port_;
  HttpHandler handler_;
  uint64_t next_id_ = 2;  // 0: the listening socket, 1: the stop fd
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::multimap<TimePoint, std::pair<uint64_t, uint64_t>> timers_;  // -> (conn, request serial)
};

}  // namespace fanout::pokedex
