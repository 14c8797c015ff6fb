#include "fuzz/targets.h"

#include <google/protobuf/stubs/logging.h>

#include <cstdlib>
#include <map>

#include "common/codec.h"
#include "common/security.h"
#include "jobs/web/html.h"
#include "ledger/handler.h"

namespace fanout::fuzz {
namespace {

// protobuf logs each string field that is not UTF-8; the fuzzers make
// millions. Decode() reports them as refused frames anyway.
const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

// A broken invariant: abort, which libFuzzer reports with the input.
void Require(bool holds, const char* what) {
  if (!holds) {
    fprintf(stderr, "fuzz invariant broken: %s\n", what);
    abort();
  }
}

bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

void Envelope(std::string_view bytes) {
  Result<pb::Envelope> env = Decode(bytes.data(), bytes.size());
  if (!env) {
    Require(!env.error().message.empty(), "a refused frame has a reason");
    return;
  }
  Require(!BodyName(*env).empty(), "an accepted envelope has a body name");
  zmq::message_t again = Encode(*env);
  Result<pb::Envelope> round = Decode(again.data(), again.size());
  Require(round.ok(), "a re-encoded envelope decodes");
  Require(round->SerializeAsString() == env->SerializeAsString(), "the round trip is exact");
}

void LedgerRequests(std::string_view bytes) {
  auto store = ledger::Store::Open(":memory:");
  Require(store.ok(), "an in-memory store opens");
  std::map<std::string, int64_t> sums;  // per book, after its last reset
  while (!bytes.empty()) {
    const size_t n = std::min<size_t>(static_cast<unsigned char>(bytes[0]), bytes.size() - 1);
    Result<pb::Envelope> env = Decode(bytes.data() + 1, n);
    bytes.remove_prefix(n + 1);
    if (!env || !env->has_ledger_request()) continue;
    const pb::LedgerRequest& request = env->ledger_request();
    pb::LedgerReply reply;
    ledger::Execute(**store, request, &reply);
    Require(reply.ok() || !reply.error().empty(), "a refusal has a reason");
    Result<ledger::Balances> book = (*store)->Snapshot(request.book());
    if (!book) continue;
    if (request.has_reset() || request.has_set() || !sums.contains(request.book())) {
      sums[request.book()] = ledger::Sum(*book);  // a new baseline
    } else {
      Require(ledger::Sum(*book) == sums[request.book()], "transfers keep a book's sum");
    }
  }
}

void H1(std::string_view bytes) {
  std::optional<std::string> text = jobs::web::FirstH1Text(bytes);
  if (text) Require(ValidUtf8(*text), "the h1 text is valid UTF-8");
}

void Authorized(std::string_view bytes) {
  Result<std::map<std::string, std::string>> keys = ParseAuthorized(bytes);
  if (!keys) {
    Require(!keys.error().message.empty() && keys.error().message.find('\n') == std::string::npos,
            "a refused authorized_keys is a one-line error");
    return;
  }
  std::string again;
  for (const auto& [key, name] : *keys) {
    Require(key.size() == 40, "an admitted key has 40 Z85 characters");
    Require(Fingerprint(key) != "?", "an admitted key decodes");
    again += key + " " + name + "\n";
  }
  Result<std::map<std::string, std::string>> reparsed = ParseAuthorized(again);
  Require(reparsed.ok() && *reparsed == *keys, "admitted keys written out parse the same");
}

}  // namespace fanout::fuzz
