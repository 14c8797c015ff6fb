#include "common/transport.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <limits>

#if defined(__SANITIZE_THREAD__)
#define FANOUT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FANOUT_TSAN 1
#endif
#endif

#ifdef FANOUT_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace fanout {

namespace {
#ifdef FANOUT_TSAN
char zmq_handoff;  // the synchronisation object libzmq stands for
#endif
}  // namespace

void MarkSent() {
#ifdef FANOUT_TSAN
  __tsan_release(&zmq_handoff);
#endif
}

void MarkReceived() {
#ifdef FANOUT_TSAN
  __tsan_acquire(&zmq_handoff);
#endif
}

zmq::context_t ManySocketsContext() {
  zmq::context_t ctx(1);
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return ctx;
  if (files.rlim_cur < files.rlim_max) {
    rlimit raised = files;
    raised.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) files = raised;
  }
  // Each socket holds a descriptor or two; the rest is for connections and
  // files. Refused (EINVAL) past what the poller can watch: the default stays.
  const auto sockets = static_cast<int>(
      std::clamp<rlim_t>(files.rlim_cur / 2, 1023, std::numeric_limits<int>::max() / 2));
  if (zmq_ctx_set(ctx.handle(), ZMQ_MAX_SOCKETS, sockets) != 0) {
    spdlog::debug("ZeroMQ kept its cap of 1,023 sockets: {}", zmq_strerror(zmq_errno()));
  }
  return ctx;
}

zmq::socket_t MakeSocket(zmq::context_t& ctx, zmq::socket_type type) {
  zmq::socket_t socket(ctx, type);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxFrameBytes));
  if (type == zmq::socket_type::router) {
    // Report a send to a vanished peer instead of dropping it silently.
    socket.set(zmq::sockopt::router_mandatory, 1);
  }
  return socket;
}

Result<std::string> Bind(zmq::socket_t& socket, const std::string& endpoint) {
  try {
    socket.bind(endpoint);
    return socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return InvalidArgument("cannot bind {}: {}", endpoint, e.what());
  }
}

Status Connect(zmq::socket_t& socket, const std::string& endpoint) {
  try {
    socket.connect(endpoint);
    return {};
  } catch (const zmq::error_t& e) {
    return InvalidArgument("cannot connect to {}: {}", endpoint, e.what());
  }
}

bool SendFrame(zmq::socket_t& socket, zmq::message_t& frame) {
  MarkSent();
  try {
    return socket.send(frame, zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

bool Send(zmq::socket_t& socket, const pb::Envelope& env) {
  zmq::message_t frame = Encode(env);
  return SendFrame(socket, frame);
}

bool SendTo(zmq::socket_t& router, std::string_view peer, const pb::Envelope& env) {
  MarkSent();
  try {
    zmq::message_t id(peer.data(), peer.size());
    if (!router.send(id, zmq::send_flags::dontwait | zmq::send_flags::sndmore)) return false;
    zmq::message_t frame = Encode(env);
    // After the routing frame is taken, the payload joins the same message.
    return router.send(frame, zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t&) {
    return false;  // EHOSTUNREACH: the peer has gone
  }
}

Sent TrySendBatch(zmq::socket_t& socket, std::string_view peer, std::span<zmq::message_t> frames) {
  if (frames.empty()) return Sent::kOk;
  MarkSent();
  try {
    if (!peer.empty()) {
      zmq::message_t id(peer.data(), peer.size());
      if (!socket.send(id, zmq::send_flags::dontwait | zmq::send_flags::sndmore)) {
        return Sent::kFull;
      }
    }
    // Once the first frame is queued, ZeroMQ takes the rest of the message.
    for (size_t i = 0; i < frames.size(); ++i) {
      const bool last = i + 1 == frames.size();
      auto flags =
          zmq::send_flags::dontwait | (last ? zmq::send_flags::none : zmq::send_flags::sndmore);
      if (!socket.send(frames[i], flags)) return Sent::kFull;
    }
    return Sent::kOk;
  } catch (const zmq::error_t&) {
    return Sent::kGone;  // EHOSTUNREACH: the peer has gone
  }
}

bool RecvMessage(zmq::socket_t& socket, Message& out) {
  out.frames.clear();
  try {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) return false;
    bool more = frame.more();
    out.frames.push_back(std::move(frame));
    while (more) {
      zmq::message_t next;
      // The remaining frames of a message are already here.
      (void)socket.recv(next, zmq::recv_flags::none);
      more = next.more();
      out.frames.push_back(std::move(next));
    }
    MarkReceived();
    return true;
  } catch (const zmq::error_t&) {
    return !out.frames.empty();
  }
}

bool SendParts(zmq::socket_t& socket, std::initializer_list<zmq::const_buffer> frames,
               zmq::message_t& last) {
  MarkSent();
  try {
    for (const zmq::const_buffer& f : frames) socket.send(f, zmq::send_flags::sndmore);
    return socket.send(last, zmq::send_flags::none).has_value();
  } catch (const zmq::error_t&) {
    return false;  // the context is shutting down
  }
}

std::span<const zmq::message_t> Payloads(const Message& msg, bool from_router) {
  std::span<const zmq::message_t> all(msg.frames);
  if (!from_router) return all;
  return all.empty() ? all : all.subspan(1);
}

std::string PeerName(const zmq::message_t& identity) {
  return std::string(static_cast<const char*>(identity.data()), identity.size());
}

std::string PrintablePeer(std::string_view peer) {
  std::string out;
  for (unsigned char c : peer) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace fanout
