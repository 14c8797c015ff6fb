#include "coordinator/job_kinds.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/text.h"

namespace fanout::coordinator {
namespace {

Status ValidateMath(const pb::MathJob& math) {
  if (!std::isfinite(math.start())) return InvalidArgument("math start must be a finite number");
  if (math.iterations() > kMaxMathIterations) {
    return InvalidArgument("math iterations must be at most {}", kMaxMathIterations);
  }
  return {};
}

bool IsHttpUrl(const std::string& url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

Status ValidateWeb(const pb::WebJob& web, uint32_t count) {
  if (web.urls_size() > 0) {
    if (!web.url_template().empty())
      return InvalidArgument("give a URL template or URLs, not both");
    if (static_cast<uint32_t>(web.urls_size()) != count) {
      return InvalidArgument("count ({}) must equal the number of URLs ({})", count,
                             web.urls_size());
    }
    for (int i = 0; i < web.urls_size(); ++i) {
      const std::string& url = web.urls(i);
      if (!IsHttpUrl(url) || url.size() > kMaxUrlBytes) {
        return InvalidArgument("URL {} is not an http:// or https:// URL: '{}'", i + 1,
                               url.substr(0, 200));
      }
    }
  } else {
    if (!IsHttpUrl(web.url_template())) {
      return InvalidArgument("the URL template must start with http:// or https:// (got '{}')",
                             web.url_template().substr(0, 200));
    }
    if (web.url_template().find("{n}") == std::string::npos) {
      return InvalidArgument("the URL template has no {{n}} for the page number: '{}'",
                             web.url_template().substr(0, 200));
    }
    if (web.url_template().size() > kMaxUrlBytes) return InvalidArgument("URL template too long");
  }
  if (web.retries() > kMaxRetries) {
    return InvalidArgument("retries must be at most {} (got {})", kMaxRetries, web.retries());
  }
  if (web.timeout_ms() > kMaxTimeoutMs) {
    return InvalidArgument("timeout must be at most {} ms (got {})", kMaxTimeoutMs,
                           web.timeout_ms());
  }
  return {};
}

Status ValidateBank(const pb::BankJob& bank) {
  if (bank.accounts() < 2 || bank.accounts() > kMaxBankAccounts) {
    return InvalidArgument("accounts must be between 2 and {} (got {})", kMaxBankAccounts,
                           bank.accounts());
  }
  if (bank.initial() < 0 || bank.initial() > kMaxBankAmount) {
    return InvalidArgument("initial balance must be between 0 and {} (got {})", kMaxBankAmount,
                           bank.initial());
  }
  if (bank.amount_max() < 1 || bank.amount_max() > kMaxBankAmount) {
    return InvalidArgument("amount max must be between 1 and {} (got {})", kMaxBankAmount,
                           bank.amount_max());
  }
  if (bank.mode() != pb::UNSAFE && bank.mode() != pb::LOCKED && bank.mode() != pb::ATOMIC) {
    return InvalidArgument("mode must be unsafe, locked or atomic");
  }
  if (bank.verify_ms() > 60'000) return InvalidArgument("verify must be at most 60000 ms");
  if (bank.gap_us() > 1'000'000) return InvalidArgument("gap must be at most 1000000 us");
  return {};
}

}  // namespace

PlannedTransfer PlanTransfer(const pb::BankJob& bank, uint32_t index) {
  const uint64_t r = Mix64(bank.seed() ^ Mix64(index));
  const uint32_t n = std::max<uint32_t>(2, bank.accounts());
  const uint32_t from = static_cast<uint32_t>(r % n);
  const uint32_t to = (from + 1 + static_cast<uint32_t>(Mix64(r) % (n - 1))) % n;
  const int64_t amount =
      1 + static_cast<int64_t>(Mix64(r + 1) %
                               static_cast<uint64_t>(std::max<int64_t>(1, bank.amount_max())));
  return {from + 1, to + 1, amount};
}

std::string ExpandTemplate(const std::string& url_template, int64_t number) {
  std::string url;
  const std::string n = std::to_string(number);
  size_t from = 0;
  for (size_t at; (at = url_template.find("{n}", from)) != std::string::npos; from = at + 3) {
    url.append(url_template, from, at - from).append(n);
  }
  return url.append(url_template, from);
}

Status ValidateSpec(const pb::JobSpec& spec) {
  if (spec.model() != pb::SYNC && spec.model() != pb::THREADS && spec.model() != pb::ASYNC) {
    return InvalidArgument("model must be sync, threads or async");
  }
  if (spec.count() == 0 || spec.count() > kMaxTasksPerJob) {
    return InvalidArgument("count must be between 1 and {} (got {})", kMaxTasksPerJob,
                           spec.count());
  }
  if (spec.concurrency() > kMaxConcurrency) {
    return InvalidArgument("concurrency must be at most {} (got {})", kMaxConcurrency,
                           spec.concurrency());
  }
  if (spec.max_attempts() > kMaxAttempts) {
    return InvalidArgument("max attempts must be at most {} (got {})", kMaxAttempts,
                           spec.max_attempts());
  }
  switch (spec.kind_case()) {
    case pb::JobSpec::kMath:
      return ValidateMath(spec.math());
    case pb::JobSpec::kWeb:
      return ValidateWeb(spec.web(), spec.count());
    case pb::JobSpec::kBank:
      return ValidateBank(spec.bank());
    case pb::JobSpec::KIND_NOT_SET:
      break;
  }
  return InvalidArgument("unknown job kind (this coordinator runs math and web jobs)");
}

void FillPayload(const pb::JobSpec& spec, uint32_t index, const std::string& ledger,
                 pb::Task* task) {
  switch (spec.kind_case()) {
    case pb::JobSpec::kMath: {
      pb::Math* math = task->mutable_math();
      math->set_start(spec.math().start() + static_cast<double>(index - 1));
      math->set_iterations(spec.math().iterations());
      return;
    }
    case pb::JobSpec::kWeb: {
      const pb::WebJob& web = spec.web();
      pb::FetchPage* fetch = task->mutable_fetch_page();
      fetch->set_url(web.urls_size() > 0
                         ? web.urls(static_cast<int>(index - 1))
                         : ExpandTemplate(web.url_template(), web.start() + index - 1));
      fetch->set_timeout_ms(web.timeout_ms());
      fetch->set_retries(web.retries());
      fetch->set_max_body_bytes(web.max_body_bytes());
      return;
    }
    case pb::JobSpec::kBank: {
      const pb::BankJob& bank = spec.bank();
      const PlannedTransfer plan = PlanTransfer(bank, index);
      pb::Transfer* t = task->mutable_transfer();
      t->set_ledger(ledger);
      t->set_book(task->job_id());
      t->set_transfer_id(fmt::format("{}/{}", task->job_id(), index));
      t->set_from(fmt::format("bank_{}", plan.from));
      t->set_to(fmt::format("bank_{}", plan.to));
      t->set_amount(plan.amount);
      t->set_mode(bank.mode());
      t->set_verify_ms(bank.verify_ms());
      t->set_gap_us(bank.gap_us());
      return;
    }
    case pb::JobSpec::KIND_NOT_SET:
      break;
  }
}

}  // namespace fanout::coordinator
