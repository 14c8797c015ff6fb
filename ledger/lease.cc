#include "ledger/lease.h"

#include <algorithm>

namespace fanout::ledger {

std::optional<LeaseLocks::Grant> LeaseLocks::Acquire(const std::string& book,
                                                     const std::string& owner, Duration lease,
                                                     uint64_t tag, TimePoint now) {
  Lock& lock = locks_[book];
  if (lock.held && lock.held->expires <= now) lock.held.reset();  // a lapsed lease
  if (!lock.held && lock.waiters.empty()) {
    lock.held = Grant{book, owner, tag, now + lease};
    return lock.held;
  }
  if (lock.held && lock.held->owner == owner) {
    lock.held->expires = now + lease;
    lock.held->tag = tag;
    return lock.held;
  }
  lock.waiters.push_back({owner, lease, tag});
  if (!lock.held) return GrantNext(book, lock, now);
  return std::nullopt;
}

bool LeaseLocks::Release(const std::string& book, const std::string& owner, TimePoint now,
                         std::optional<Grant>* next) {
  auto it = locks_.find(book);
  if (it == locks_.end() || !it->second.held || it->second.held->owner != owner) return false;
  const bool was_valid = it->second.held->expires > now;
  it->second.held.reset();
  *next = GrantNext(book, it->second, now);
  if (!it->second.held && it->second.waiters.empty()) locks_.erase(it);
  return was_valid;
}

std::vector<LeaseLocks::Grant> LeaseLocks::Expire(TimePoint now) {
  std::vector<Grant> grants;
  for (auto it = locks_.begin(); it != locks_.end();) {
    Lock& lock = it->second;
    if (lock.held && lock.held->expires <= now) {
      lock.held.reset();
      if (auto g = GrantNext(it->first, lock, now)) grants.push_back(*g);
    }
    it = (!lock.held && lock.waiters.empty()) ? locks_.erase(it) : std::next(it);
  }
  return grants;
}

TimePoint LeaseLocks::NextExpiry() const {
  TimePoint next = TimePoint::max();
  for (const auto& [book, lock] : locks_) {
    if (lock.held) next = std::min(next, lock.held->expires);
  }
  return next;
}

void LeaseLocks::Drop(const std::string& book) { locks_.erase(book); }

std::optional<std::string> LeaseLocks::Holder(const std::string& book) const {
  auto it = locks_.find(book);
  if (it == locks_.end() || !it->second.held) return std::nullopt;
  return it->second.held->owner;
}

size_t LeaseLocks::Waiting(const std::string& book) const {
  auto it = locks_.find(book);
  return it == locks_.end() ? 0 : it->second.waiters.size();
}

std::optional<LeaseLocks::Grant> LeaseLocks::GrantNext(const std::string& book, Lock& lock,
                                                       TimePoint now) {
  if (lock.waiters.empty()) return std::nullopt;
  Waiter w = std::move(lock.waiters.front());
  lock.waiters.pop_front();
  lock.held = Grant{book, w.owner, w.tag, now + w.lease};
  return lock.held;
}

}  // namespace fanout::ledger
