// The fuzz targets: what libFuzzer feeds (fuzz/*_fuzz.cc, `make fuzz`) and
// what the unit tests replay from fuzz/corpus/<target>/ (replay_test.cc), so
// a crasher once found stays fixed.
//
// Each takes any bytes and must neither crash, leak, hang nor trip a
// sanitizer; each also checks what must hold whatever the input.
#pragma once

#include <string_view>

namespace fanout::fuzz {

// The envelope decoder: Decode(), and for what it accepts, BodyName() and a
// re-encoding that decodes to the same message.
void Envelope(std::string_view bytes);

// The ledger's request handler, over a sequence of requests (each a length
// byte and that many bytes of an Envelope) against one in-memory Store:
// money is neither made nor lost by transfers, whatever they say.
void LedgerRequests(std::string_view bytes);

// The <h1> extractor: FirstH1Text() on any bytes returns valid UTF-8.
void H1(std::string_view bytes);

// authorized_keys: ParseAuthorized() admits only well-formed keys, and what
// it admits, written back out, parses to the same keys and names.
void Authorized(std::string_view bytes);

}  // namespace fanout::fuzz
