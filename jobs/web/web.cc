#include "jobs/web/web.h"

#include <fmt/format.h>

#include <cmath>

#include "jobs/flags.h"
#include "jobs/web/curl_multi.h"
#include "jobs/web/fetch.h"

namespace fanout::jobs {
namespace {

class WebFlags final : public SubmitFlags {
 public:
  explicit WebFlags(CLI::App& cmd) {
    count_option_ = AddCountFlag(cmd, count_);
    cmd.add_option("--start", start_, "the page number of task 1 (task i: start + i - 1)")
        ->capture_default_str();
    CLI::Option* url_template =
        cmd.add_option("--url-template", url_template_, "page URL; {n} is the page number")
            ->capture_default_str();
    cmd.add_option("--urls-file", urls_file_,
                   "fetch the URLs in FILE instead (one a line; - is stdin)")
        ->excludes(url_template);
    cmd.add_option("--timeout-ms", timeout_ms_, "per try of a page, redirects included")
        ->check(CLI::Range(uint32_t{1}, web::kMaxTimeoutMs))
        ->capture_default_str();
    cmd.add_option("--retries", retries_, "more tries after a 5xx, a 429 or a network error")
        ->check(CLI::Range(uint32_t{0}, web::kMaxRetries))
        ->capture_default_str();
    cmd.add_option("--max-body-bytes", max_body_bytes_, "a bigger page is a failed task")
        ->check(CLI::Range(uint64_t{1}, web::kMaxBodyBytes))
        ->capture_default_str();
  }

  Status Fill(pb::JobSpec& spec) const override {
    pb::WebJob* web = spec.mutable_web();
    spec.set_count(count_);
    if (!urls_file_.empty()) {
      Result<std::vector<std::string>> lines = ReadLines(urls_file_);
      if (!lines) return lines.error();
      for (const std::string& line : *lines) {  // blank lines and # comments skipped
        const size_t first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') continue;
        web->add_urls(line.substr(first, line.find_last_not_of(" \t") - first + 1));
      }
      if (web->urls_size() == 0) return InvalidArgument("no URLs in {}", SourceName(urls_file_));
      if (count_option_->count() > 0 && count_ != static_cast<uint32_t>(web->urls_size())) {
        return InvalidArgument("--count {} but {} URLs in {}", count_, web->urls_size(),
                               SourceName(urls_file_));
      }
      spec.set_count(static_cast<uint32_t>(web->urls_size()));
    } else {
      if (start_ != std::floor(start_)) {
        return InvalidArgument("--start must be a whole page number for web jobs");
      }
      web->set_url_template(url_template_);
      web->set_start(static_cast<int64_t>(start_));
    }
    web->set_timeout_ms(timeout_ms_);
    web->set_retries(retries_);
    web->set_max_body_bytes(max_body_bytes_);
    return {};
  }

 private:
  CLI::Option* count_option_ = nullptr;
  uint32_t count_ = 20;
  double start_ = 1;
  std::string url_template_ = "https://pokemondb.net/pokedex/{n}";
  std::string urls_file_;
  uint32_t timeout_ms_ = web::kDefaultTimeoutMs;
  uint32_t retries_ = 2;
  uint64_t max_body_bytes_ = web::kDefaultMaxBodyBytes;
};

class WebRunner final : public Runner {
 public:
  void RunBlocking(const pb::Task& task, pb::Result& result, std::stop_token stop) override {
    web::FetchBlocking(task.fetch_page(), result, stop);
  }
  co::Task<void> RunAsync(const pb::Task& task, pb::Result& result, AsyncEnv& env,
                          std::stop_token stop) override {
    co_await web::FetchAsync(task.fetch_page(), result, env.loop(), env.Get<web::CurlMulti>(),
                             stop);
  }
};

bool IsHttpUrl(const std::string& url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

// The article's page label: the Pokédex number on two digits ("01"), or
// the URL for a job from a list of URLs.
std::string PageLabel(const pb::JobSpec& spec, uint32_t index) {
  const pb::WebJob& web = spec.web();
  if (web.urls_size() > 0) return web.urls(static_cast<int>(index - 1));
  return fmt::format("{:02}", web.start() + index - 1);
}

bool IsPokedex(const pb::JobSpec& spec) {
  return spec.web().urls_size() == 0 &&
         spec.web().url_template().find("pokedex") != std::string::npos;
}

}  // namespace

std::string web::ExpandTemplate(const std::string& url_template, int64_t number) {
  std::string url;
  const std::string n = std::to_string(number);
  size_t from = 0;
  for (size_t at; (at = url_template.find("{n}", from)) != std::string::npos; from = at + 3) {
    url.append(url_template, from, at - from).append(n);
  }
  return url.append(url_template, from);
}

std::unique_ptr<SubmitFlags> WebKind::AddSubmitFlags(CLI::App& cmd) const {
  return std::make_unique<WebFlags>(cmd);
}

Status WebKind::Validate(const pb::JobSpec& spec) const {
  const pb::WebJob& web = spec.web();
  if (web.urls_size() > 0) {
    if (!web.url_template().empty()) {
      return InvalidArgument("give a URL template or URLs, not both");
    }
    if (static_cast<uint32_t>(web.urls_size()) != spec.count()) {
      return InvalidArgument("count ({}) must equal the number of URLs ({})", spec.count(),
                             web.urls_size());
    }
    for (int i = 0; i < web.urls_size(); ++i) {
      const std::string& url = web.urls(i);
      if (!IsHttpUrl(url) || url.size() > web::kMaxUrlBytes) {
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
    if (web.url_template().size() > web::kMaxUrlBytes) {
      return InvalidArgument("URL template too long");
    }
  }
  if (web.retries() > web::kMaxRetries) {
    return InvalidArgument("retries must be at most {} (got {})", web::kMaxRetries, web.retries());
  }
  if (web.timeout_ms() > web::kMaxTimeoutMs) {
    return InvalidArgument("timeout must be at most {} ms (got {})", web::kMaxTimeoutMs,
                           web.timeout_ms());
  }
  if (web.max_body_bytes() > web::kMaxBodyBytes) {
    return InvalidArgument("max body must be at most {} bytes (got {})", web::kMaxBodyBytes,
                           web.max_body_bytes());
  }
  return {};
}

void WebKind::FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv&,
                       pb::Task* task) const {
  const pb::WebJob& web = spec.web();
  pb::FetchPage* fetch = task->mutable_fetch_page();
  fetch->set_url(web.urls_size() > 0
                     ? web.urls(static_cast<int>(index - 1))
                     : web::ExpandTemplate(web.url_template(), web.start() + index - 1));
  fetch->set_timeout_ms(web.timeout_ms());
  fetch->set_retries(web.retries());
  fetch->set_max_body_bytes(web.max_body_bytes());
}

Result<std::unique_ptr<Runner>> WebKind::NewRunner(const WorkerEnv&) const {
  return std::unique_ptr<Runner>(std::make_unique<WebRunner>());
}

std::string WebKind::StartLine(const pb::JobSpec& spec, uint32_t index) const {
  return fmt::format("Downloading {}{}...", IsPokedex(spec) ? "Pokémon " : "",
                     PageLabel(spec, index));
}

std::string WebKind::TaskLabel(const pb::JobSpec& spec, uint32_t index) const {
  if (spec.web().urls_size() > 0) return JobKind::TaskLabel(spec, index);
  return PageLabel(spec, index);
}

std::string WebKind::DoneLine(const pb::JobSpec& spec, uint32_t index, const pb::Result& r) const {
  if (r.ok()) return fmt::format("Retrieved {}={}", PageLabel(spec, index), r.text());
  return fmt::format("Failed {}: {}", PageLabel(spec, index), r.error());
}

}  // namespace fanout::jobs
