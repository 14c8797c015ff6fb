#include "common/codec.h"

#include <cassert>
#include <limits>

namespace fanout {

pb::Envelope NewEnvelope() {
  pb::Envelope env;
  env.set_version(kProtocolVersion);
  return env;
}

zmq::message_t Encode(const pb::Envelope& env) {
  assert(env.version() == kProtocolVersion);
  const size_t size = env.ByteSizeLong();
  zmq::message_t frame(size);
  env.SerializeWithCachedSizesToArray(static_cast<uint8_t*>(frame.data()));
  return frame;
}

Result<pb::Envelope> Decode(const void* data, size_t size) {
  if (size > kMaxFrameBytes) {
    return InvalidArgument("frame of {} bytes is over the {} byte limit", size, kMaxFrameBytes);
  }
  pb::Envelope env;
  if (!env.ParseFromArray(data, static_cast<int>(size))) {
    return InvalidArgument("frame of {} bytes is not a fanout envelope", size);
  }
  if (env.version() != kProtocolVersion) {
    return InvalidArgument("protocol version {} (this build speaks {})", env.version(),
                           kProtocolVersion);
  }
  if (env.body_case() == pb::Envelope::BODY_NOT_SET) {
    return InvalidArgument("envelope has no body this build knows");
  }
  return env;
}

std::string_view BodyName(const pb::Envelope& env) {
  switch (env.body_case()) {
    case pb::Envelope::kHello:
      return "hello";
    case pb::Envelope::kWaiting:
      return "waiting";
    case pb::Envelope::kJobs:
      return "jobs";
    case pb::Envelope::kJobsReply:
      return "jobs_reply";
    case pb::Envelope::kStop:
      return "stop";
    case pb::Envelope::kHeartbeat:
      return "heartbeat";
    case pb::Envelope::kResult:
      return "result";
    case pb::Envelope::kTask:
      return "task";
    case pb::Envelope::kDrain:
      return "drain";
    case pb::Envelope::kReturned:
      return "returned";
    case pb::Envelope::kSubmit:
      return "submit";
    case pb::Envelope::kAccepted:
      return "accepted";
    case pb::Envelope::kRejected:
      return "rejected";
    case pb::Envelope::kEvents:
      return "events";
    case pb::Envelope::kJobDone:
      return "job_done";
    case pb::Envelope::kCancel:
      return "cancel";
    case pb::Envelope::kStatus:
      return "status";
    case pb::Envelope::kStatusReply:
      return "status_reply";
    case pb::Envelope::kWatch:
      return "watch";
    case pb::Envelope::kLedgerRequest:
      return "ledger_request";
    case pb::Envelope::kLedgerReply:
      return "ledger_reply";
    case pb::Envelope::kError:
      return "error";
    case pb::Envelope::BODY_NOT_SET:
      break;
  }
  return "empty";
}

std::string_view ModelName(pb::Model model) {
  switch (model) {
    case pb::SYNC:
      return "sync";
    case pb::THREADS:
      return "threads";
    case pb::ASYNC:
      return "async";
    default:
      return "unspecified";
  }
}

std::string OriginName(const pb::Origin& origin) {
  std::string who = origin.user().empty() ? origin.host() : origin.user() + "@" + origin.host();
  if (who.empty()) who = "a client";
  if (origin.pid() > 0) who += fmt::format(" (pid {})", origin.pid());
  return who;
}

Result<pb::Model> ParseModel(std::string_view name) {
  if (name == "sync") return pb::SYNC;
  if (name == "threads") return pb::THREADS;
  if (name == "async") return pb::ASYNC;
  return InvalidArgument("unknown model '{}' (expected sync, threads or async)", name);
}

}  // namespace fanout
