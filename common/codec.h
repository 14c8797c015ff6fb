// The envelope codec: the only door between fanout's code and the generated
// Protobuf types on the wire.
//
// Every ZeroMQ payload frame holds exactly one pb::Envelope. Decode() never
// throws and never trusts its input: oversized frames, bytes that are not an
// Envelope, another protocol version and an empty body are all Errors with a
// one-line message.
//
//   pb::Envelope env = NewEnvelope();
//   env.mutable_heartbeat();
//   socket.send(Encode(env), zmq::send_flags::dontwait);
//   ...
//   Result<pb::Envelope> in = Decode(frame);
//   if (!in) spdlog::warn("dropped frame: {}", in.error().message);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <zmq.hpp>

#include "common/result.h"
#include "proto/fanout.pb.h"

namespace fanout {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kMaxFrameBytes = 16u << 20;

// An empty envelope stamped with this build's protocol version.
pb::Envelope NewEnvelope();

// Serialises `env` into one frame. `env` must come from NewEnvelope().
zmq::message_t Encode(const pb::Envelope& env);

Result<pb::Envelope> Decode(const void* data, size_t size);
inline Result<pb::Envelope> Decode(const zmq::message_t& frame) {
  return Decode(frame.data(), frame.size());
}

// "task", "result", ... for log lines.
std::string_view BodyName(const pb::Envelope& env);

// "alice@vm (pid 4321)": who submitted or cancelled a job.
std::string OriginName(const pb::Origin& origin);

// "sync", "threads", "async"; ParseModel is its inverse.
std::string_view ModelName(pb::Model model);
Result<pb::Model> ParseModel(std::string_view name);

}  // namespace fanout
