// ZeroMQ plumbing shared by every fanout process.
//
// Sockets are made with linger 0 and the frame-size cap; Bind() reports the
// endpoint actually bound, so "tcp://127.0.0.1:*" (a free port) works
// everywhere. Send and receive never block and never throw: EAGAIN and a gone
// peer are ordinary results. Every socket belongs to one thread.
#pragma once

#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "common/codec.h"
#include "common/result.h"

namespace fanout {

zmq::socket_t MakeSocket(zmq::context_t& ctx, zmq::socket_type type);

// A context for a process that may hold many sockets (a worker: one per
// pool thread): the soft limit on open files raised to the hard one, and
// ZeroMQ's own cap (1,023 sockets by default) raised to match it.
zmq::context_t ManySocketsContext();

// Binds and returns the endpoint bound ("tcp://127.0.0.1:40123").
Result<std::string> Bind(zmq::socket_t& socket, const std::string& endpoint);
Status Connect(zmq::socket_t& socket, const std::string& endpoint);

// Sends one envelope on a DEALER (or any non-ROUTER socket). False when the
// message could not be queued.
bool Send(zmq::socket_t& socket, const pb::Envelope& env);
bool SendFrame(zmq::socket_t& socket, zmq::message_t& frame);
// Sends one envelope to `peer` through a ROUTER. False when the peer is gone
// or its queue is full.
bool SendTo(zmq::socket_t& router, std::string_view peer, const pb::Envelope& env);

// Batching: one ZeroMQ message may carry several envelopes, one per frame
// (after the routing frame on a ROUTER). Receivers handle every frame in
// order; a hot path then pays one wake-up and one syscall per batch, not per
// envelope. kMaxBatch bounds a message's size.
inline constexpr size_t kMaxBatch = 256;

// Sends `frames` (encoded envelopes, at most kMaxBatch) as one message, to
// `peer` through a ROUTER, or on a DEALER when `peer` is empty. All or
// nothing: kFull when the peer's queue is at its high-water mark (it reads
// slower than we send), kGone when it has disconnected.
enum class Sent { kOk, kFull, kGone };
Sent TrySendBatch(zmq::socket_t& socket, std::string_view peer, std::span<zmq::message_t> frames);
inline bool SendBatch(zmq::socket_t& socket, std::string_view peer,
                      std::span<zmq::message_t> frames) {
  return TrySendBatch(socket, peer, frames) == Sent::kOk;
}

// One whole message read from a socket: every frame of it.
struct Message {
  std::vector<zmq::message_t> frames;
  size_t size() const { return frames.size(); }
};

// Reads one whole message without blocking; false when none is waiting.
// `out` is reused, so a hot loop does not allocate the vector every time.
bool RecvMessage(zmq::socket_t& socket, Message& out);

// The envelope frames of a message: all of it from a DEALER, all but the
// routing frame from a ROUTER (empty when there is nothing after it).
std::span<const zmq::message_t> Payloads(const Message& msg, bool from_router);

std::string PeerName(const zmq::message_t& identity);

// Sends a message of several frames (all but the last with sndmore),
// blocking while the queue is full. For inproc hand-offs between our own
// threads, where waiting is the right back-pressure.
bool SendParts(zmq::socket_t& socket, std::initializer_list<zmq::const_buffer> frames,
               zmq::message_t& last);

// ThreadSanitizer cannot see inside libzmq (Debian's is not instrumented),
// so it does not know that a message is fully written before another thread
// receives it, and reports every hand-off as a race. Every send and receive
// in fanout goes through these two marks, which tell it what libzmq
// guarantees. They compile to nothing in other builds.
void MarkSent();
void MarkReceived();

// Makes a ZeroMQ routing id printable for logs: hex for binary ids.
std::string PrintablePeer(std::string_view peer);

}  // namespace fanout
