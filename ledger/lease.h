// Lease locks: the ledger's lock for the `locked` transfer mode, one per
// book. The holder has it until it unlocks or its lease runs out, so a
// killed holder blocks the others for at most one lease. Waiters are served
// first come, first served. Pure logic with an explicit clock: the service
// turns grants into replies and calls Expire when NextExpiry() passes.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace fanout::ledger {

class LeaseLocks {
 public:
  // Who got a lock: `tag` is what the caller passed to Acquire (the service
  // uses it to find the request to answer).
  struct Grant {
    std::string book;
    std::string owner;
    uint64_t tag;
    TimePoint expires;
  };

  // Grants at once (returned) if the book's lock is free or already this
  // owner's (the lease is renewed); otherwise queues the request.
  std::optional<Grant> Acquire(const std::string& book, const std::string& owner, Duration lease,
                               uint64_t tag, TimePoint now);
  // Releases the owner's lock; false if it did not hold it (its lease ran
  // out). The next waiter, if any, is granted and returned.
  bool Release(const std::string& book, const std::string& owner, TimePoint now,
               std::optional<Grant>* next);
  // Takes back every lock whose lease has run out; returns the grants made
  // to the waiters next in line.
  std::vector<Grant> Expire(TimePoint now);
  // When the earliest lease runs out (TimePoint::max() if none is held).
  TimePoint NextExpiry() const;
  // Forgets a book's lock and its waiters (the book was reset).
  void Drop(const std::string& book);

  std::optional<std::string> Holder(const std::string& book) const;
  size_t Waiting(const std::string& book) const;

 private:
  struct Waiter {
    std::string owner;
    Duration lease;
    uint64_t tag;
  };
  struct Lock {
    std::optional<Grant> held;
    std::deque<Waiter> waiters;
  };
  // Hands the lock to the next waiter, if any.
  std::optional<Grant> GrantNext(const std::string& book, Lock& lock, TimePoint now);

  std::map<std::string, Lock> locks_;
};

}  // namespace fanout::ledger
