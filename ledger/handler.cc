#include "ledger/handler.h"

namespace fanout::ledger {

void Fail(pb::LedgerReply* reply, const Error& error) {
  reply->set_ok(false);
  reply->set_error(error.message);
  reply->set_retry(error.code == Error::Code::kUnavailable);
}

uint64_t Execute(Store& store, const pb::LedgerRequest& r, pb::LedgerReply* reply) {
  const std::string& book = r.book();
  reply->set_ok(true);
  switch (r.op_case()) {
    case pb::LedgerRequest::kGet: {
      Result<int64_t> balance = store.Get(book, r.get().account());
      if (!balance) return Fail(reply, balance.error()), 0;
      reply->set_balance(*balance);
      return 0;
    }
    case pb::LedgerRequest::kSet: {
      Result<uint64_t> ticket = store.Set(book, r.set().account(), r.set().balance());
      if (!ticket) return Fail(reply, ticket.error()), 0;
      reply->set_balance(r.set().balance());
      return *ticket;
    }
    case pb::LedgerRequest::kTransfer: {
      const pb::TransferFunds& t = r.transfer();
      Result<TransferOutcome> out =
          store.Transfer(book, t.transfer_id(), t.from(), t.to(), t.amount());
      if (!out) return Fail(reply, out.error()), 0;
      reply->set_already_applied(out->already_applied);
      return out->ticket;
    }
    case pb::LedgerRequest::kSnapshot: {
      // Sealed first, read second: what the reply shows is final.
      uint64_t ticket = 0;
      if (r.snapshot().close()) {
        Result<uint64_t> sealed = store.Close(book);
        if (!sealed) return Fail(reply, sealed.error()), 0;
        ticket = *sealed;
      }
      Result<Balances> balances = store.Snapshot(book);
      if (!balances) return Fail(reply, balances.error()), 0;
      reply->mutable_balances()->insert(balances->begin(), balances->end());
      return ticket;
    }
    case pb::LedgerRequest::kReset: {
      Result<uint64_t> ticket =
          store.Reset(book, r.reset().accounts(), r.reset().initial(), r.reset().keep_existing());
      if (!ticket) return Fail(reply, ticket.error()), 0;
      return *ticket;
    }
    default:
      Fail(reply, InvalidArgument("request has no operation this ledger knows"));
      return 0;
  }
}

}  // namespace fanout::ledger
