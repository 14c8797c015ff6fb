#include "coordinator/job_kinds.h"

#include <cmath>

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

}  // namespace

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
    case pb::JobSpec::KIND_NOT_SET:
      break;
  }
  return InvalidArgument("unknown job kind (this coordinator runs math and web jobs)");
}

void FillPayload(const pb::JobSpec& spec, uint32_t index, pb::Task* task) {
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
    case pb::JobSpec::KIND_NOT_SET:
      break;
  }
}

}  // namespace fanout::coordinator
