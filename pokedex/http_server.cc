#include "pokedex/http_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace fanout::pokedex {
namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kMaxBodyBytes = 1024 * 1024;
constexpr uint64_t kListenId = 0;
constexpr uint64_t kStopId = 1;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 301:
      return "Moved Permanently";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

}  // namespace

HttpResponse Html(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse Text(int status, std::string body) {
  HttpResponse r = Html(status, std::move(body));
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

Result<size_t> ParseRequest(std::string_view buffer, HttpRequest& out) {
  const size_t end = buffer.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (buffer.size() > kMaxHeaderBytes) return InvalidArgument("request headers too large");
    return size_t{0};
  }
  std::string_view head = buffer.substr(0, end);
  const size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return InvalidArgument("bad request line");
  out = HttpRequest{};
  out.method = std::string(line.substr(0, sp1));
  out.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return InvalidArgument("bad HTTP version");
  if (out.target.empty() || out.target[0] != '/') return InvalidArgument("bad request target");
  out.keep_alive = version == "HTTP/1.1";
  size_t body = 0;
  std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    std::string_view field = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? "" : rest.substr(eol + 2);
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return InvalidArgument("bad header line");
    std::string_view name = field.substr(0, colon);
    std::string_view value = Trim(field.substr(colon + 1));
    if (EqualsIgnoreCase(name, "connection")) {
      if (EqualsIgnoreCase(value, "close")) out.keep_alive = false;
      if (EqualsIgnoreCase(value, "keep-alive")) out.keep_alive = true;
    } else if (EqualsIgnoreCase(name, "content-length")) {
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), body);
      if (ec != std::errc() || ptr != value.data() + value.size() || body > kMaxBodyBytes) {
        return InvalidArgument("bad content-length");
      }
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      return InvalidArgument("chunked request bodies are not supported");
    }
    out.headers.emplace_back(name, value);
  }
  const size_t total = end + 4 + body;
  return buffer.size() < total ? size_t{0} : total;  // the body is read and ignored
}

std::string SerializeResponse(const HttpResponse& r, bool keep_alive, bool head) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n", r.status,
      Reason(r.status), r.content_type, r.body.size(), keep_alive ? "keep-alive" : "close");
  for (const auto& [name, value] : r.headers) out += fmt::format("{}: {}\r\n", name, value);
  out += "\r\n";
  if (!head) out += r.body;
  return out;
}

struct HttpServer::Conn {
  uint64_t id;
  int fd;
  std::string in;
  std::string out;
  size_t written = 0;
  bool busy = false;  // a request is being answered (maybe delayed)
  bool close_after = false;
  uint64_t serial = 0;  // of the request being answered
  HttpRequest request;
  HttpResponse response;
};

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(const std::string& host, int port,
                                                       HttpHandler handler) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgument("bad listen address '{}' (an IPv4 address, e.g. 127.0.0.1)", host);
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal("socket: {}", std::strerror(errno));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 4096) != 0) {
    const int err = errno;
    close(fd);
    return Unavailable("cannot listen on {}:{}: {}", host, port, std::strerror(err));
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return std::unique_ptr<HttpServer>(new HttpServer(fd, ntohs(addr.sin_port), std::move(handler)));
}

HttpServer::HttpServer(int listen_fd, int port, HttpHandler handler)
    : listen_fd_(listen_fd),
      epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      port_(port),
      handler_(std::move(handler)) {
  epoll_event ev{.events = EPOLLIN, .data = {.u64 = kListenId}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
}

HttpServer::~HttpServer() {
  for (auto& [id, conn] : conns_) close(conn->fd);
  close(epoll_fd_);
  close(listen_fd_);
}

Status HttpServer::Run(int stop_fd) {
  epoll_event stop{.events = EPOLLIN, .data = {.u64 = kStopId}};
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd, &stop) != 0) {
    return Internal("epoll_ctl: {}", std::strerror(errno));
  }
  std::vector<epoll_event> events(256);
  while (true) {
    int timeout = -1;
    if (!timers_.empty()) {
      const auto wait = std::chrono::ceil<milliseconds>(timers_.begin()->first - Now());
      timeout = static_cast<int>(std::max<int64_t>(0, wait.count()));
    }
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) return Internal("epoll_wait: {}", std::strerror(errno));
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kStopId) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, stop_fd, nullptr);
        return {};
      }
      if (id == kListenId) {
        Accept();
        continue;
      }
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      Conn& conn = *it->second;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        Close(id);
      } else if (events[i].events & EPOLLOUT) {
        Flush(conn);
      } else {
        OnReadable(conn);
      }
    }
    const TimePoint now = Now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      auto [conn_id, serial] = timers_.begin()->second;
      timers_.erase(timers_.begin());
      auto it = conns_.find(conn_id);
      if (it == conns_.end() || it->second->serial != serial) continue;  // closed meanwhile
      Conn& conn = *it->second;
      conn.out = SerializeResponse(conn.response, !conn.close_after, conn.request.method == "HEAD");
      conn.written = 0;
      Flush(conn);
    }
  }
}

void HttpServer::Accept() {
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        spdlog::warn("pokedex: out of file descriptors; new connections wait");
      }
      return;  // EAGAIN: accepted everything waiting
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto conn = std::make_unique<Conn>();
    conn->id = next_id_++;
    conn->fd = fd;
    epoll_event ev{.events = EPOLLIN | EPOLLRDHUP, .data = {.u64 = conn->id}};
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    conns_.emplace(conn->id, std::move(conn));
  }
}

void HttpServer::OnReadable(Conn& conn) {
  char buf[16384];
  while (true) {
    const ssize_t got = read(conn.fd, buf, sizeof buf);
    if (got > 0) {
      conn.in.append(buf, static_cast<size_t>(got));
      if (conn.in.size() > kMaxHeaderBytes + kMaxBodyBytes) return Close(conn.id);
      continue;
    }
    if (got == 0 || (errno != EAGAIN && errno != EINTR)) return Close(conn.id);  // peer gone
    if (errno == EAGAIN) break;
  }
  Advance(conn);
}

void HttpServer::Advance(Conn& conn) {
  if (conn.busy) return;  // one request at a time; pipelined ones wait their turn
  Result<size_t> used = ParseRequest(conn.in, conn.request);
  if (used && *used == 0) return;
  conn.busy = true;
  ++conn.serial;
  if (!used) {
    conn.response = Text(400, used.error().message + "\n");
    conn.close_after = true;
    conn.in.clear();
  } else {
    conn.in.erase(0, *used);
    conn.close_after = !conn.request.keep_alive;
    conn.response = handler_(conn.request);
  }
  timers_.emplace(Now() + std::max(conn.response.delay, Duration::zero()),
                  std::pair{conn.id, conn.serial});
}

void HttpServer::Flush(Conn& conn) {
  while (conn.written < conn.out.size()) {
    const ssize_t sent =
        send(conn.fd, conn.out.data() + conn.written, conn.out.size() - conn.written, MSG_NOSIGNAL);
    if (sent > 0) {
      conn.written += static_cast<size_t>(sent);
      continue;
    }
    if (sent < 0 && errno == EAGAIN) {
      epoll_event ev{.events = EPOLLOUT | EPOLLRDHUP, .data = {.u64 = conn.id}};
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &ev);
      return;
    }
    return Close(conn.id);
  }
  if (conn.close_after) return Close(conn.id);
  epoll_event ev{.events = EPOLLIN | EPOLLRDHUP, .data = {.u64 = conn.id}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &ev);
  conn.out.clear();
  conn.written = 0;
  conn.busy = false;
  Advance(conn);
}

void HttpServer::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second->fd, nullptr);
  close(it->second->fd);
  conns_.erase(it);  // its timer, if any, finds nothing
}

}  // namespace fanout::pokedex
