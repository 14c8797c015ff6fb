// One ledger request against the Store: what a handler thread of the
// service runs for every operation but the lease locks (which the service's
// main thread keeps). Pure: no sockets, no threads of its own.
//
//   pb::LedgerReply reply;
//   uint64_t ticket = Execute(store, request, &reply);
//   // send `reply` once store.durable() >= ticket
#pragma once

#include <cstdint>

#include "common/codec.h"
#include "common/result.h"
#include "ledger/store.h"

namespace fanout::ledger {

// Fills `reply` (ok, or error and whether a retry may help). Returns the
// ticket of the change to wait for before replying; 0 when nothing changed.
uint64_t Execute(Store& store, const pb::LedgerRequest& request, pb::LedgerReply* reply);

// Marks `reply` failed with `error`; retry is set when the error is passing.
void Fail(pb::LedgerReply* reply, const Error& error);

}  // namespace fanout::ledger
