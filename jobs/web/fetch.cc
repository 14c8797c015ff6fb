#include "jobs/web/fetch.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <mutex>
#include <random>
#include <thread>

#include "common/version.h"
#include "jobs/kind.h"
#include "jobs/web/curl_multi.h"
#include "jobs/web/html.h"

namespace fanout::jobs::web {
namespace {

size_t OnBody(char* data, size_t size, size_t n, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const size_t bytes = size * n;
  if (t->body.size() + bytes > t->max_body_bytes) {
    t->too_big = true;
    return 0;  // libcurl stops with CURLE_WRITE_ERROR
  }
  t->body.append(data, bytes);
  return bytes;
}

// Connections, DNS answers and TLS sessions shared by every thread's handle.
class Share {
 public:
  Share() : share_(curl_share_init()) {
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &Share::Lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &Share::Unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  CURLSH* get() const { return share_; }

 private:
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* userp) {
    static_cast<Share*>(userp)->locks_[data % kLocks].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* userp) {
    static_cast<Share*>(userp)->locks_[data % kLocks].unlock();
  }
  static constexpr size_t kLocks = CURL_LOCK_DATA_LAST;
  CURLSH* share_;
  std::array<std::mutex, kLocks> locks_;
};

Share& SharedCache() {
  static Share* share = [] {
    EnsureCurl();
    return new Share();  // lives as long as the process: threads may still use it at exit
  }();
  return *share;
}

// Each pool thread keeps one easy handle, reset between tries.
struct EasyHandle {
  CURL* easy = curl_easy_init();
  ~EasyHandle() { curl_easy_cleanup(easy); }
};

uint64_t Seed() {
  return std::hash<std::thread::id>()(std::this_thread::get_id()) ^
         static_cast<uint64_t>(UnixMicros());
}

// libcurl asks about once a second, and on every bit of progress: a
// non-zero answer aborts the transfer.
int OnProgress(void* userp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const Transfer*>(userp)->stop.stop_requested() ? 1 : 0;
}

// The task's outcome after `tries` tries: a failure after more than one
// says how many were made.
void Finish(Verdict v, pb::Result& result, uint32_t tries = 1) {
  if (v.kind != Verdict::kOk && tries > 1) v.text += fmt::format(" (after {} tries)", tries);
  result.set_ok(v.kind == Verdict::kOk);
  if (v.kind == Verdict::kOk) {
    result.set_text(v.text);
  } else {
    result.set_error(v.text);
  }
}

}  // namespace

void Prepare(CURL* easy, const pb::FetchPage& page, Transfer& t) {
  static const std::string agent = fmt::format("fanout/{}", kVersion);
  const long timeout = page.timeout_ms() > 0 ? page.timeout_ms() : kDefaultTimeoutMs;
  t.url = page.url();
  t.max_body_bytes = page.max_body_bytes() > 0 ? page.max_body_bytes() : kDefaultMaxBodyBytes;
  t.body.clear();
  t.too_big = false;
  t.error[0] = '\0';
  curl_easy_setopt(easy, CURLOPT_URL, t.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout, 5000L));
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // every encoding libcurl decodes
  curl_easy_setopt(easy, CURLOPT_USERAGENT, agent.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.error);
  if (t.stop.stop_possible()) {
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &t);
  }
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t.max_body_bytes));
}

Verdict Judge(CURL* easy, CURLcode code, const Transfer& t) {
  if (t.too_big || code == CURLE_FILESIZE_EXCEEDED) {
    return {Verdict::kFail, fmt::format("page over the {} byte cap: {}", t.max_body_bytes, t.url)};
  }
  if (code == CURLE_ABORTED_BY_CALLBACK) return {Verdict::kFail, "stopped: " + t.url};
  if (code != CURLE_OK) {
    const std::string detail = t.error[0] != '\0' ? t.error : curl_easy_strerror(code);
    const bool permanent = code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT ||
                           code == CURLE_TOO_MANY_REDIRECTS;
    return {permanent ? Verdict::kFail : Verdict::kRetry, fmt::format("{}: {}", detail, t.url)};
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 500 || status == 429) {
    return {Verdict::kRetry, fmt::format("HTTP {} from {}", status, t.url)};
  }
  if (status < 200 || status >= 300) {
    return {Verdict::kFail, fmt::format("HTTP {} from {}", status, t.url)};
  }
  const char* type = nullptr;
  curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &type);
  const std::string_view content_type = type ? type : "";
  if (!content_type.empty() && content_type.find("html") == std::string_view::npos) {
    return {Verdict::kFail, fmt::format("not an HTML page ({}): {}", content_type, t.url)};
  }
  std::optional<std::string> h1 = FirstH1Text(t.body);
  if (!h1) return {Verdict::kFail, fmt::format("no <h1> in the page at {}", t.url)};
  return {Verdict::kOk, std::move(*h1)};
}

Duration RetryDelay(uint32_t attempt) {
  thread_local std::mt19937_64 rng(Seed());
  const double base =
      std::min(5000.0, 100.0 * static_cast<double>(1u << std::min(attempt - 1, 6u)));
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, std::milli>(base * jitter(rng)));
}

void FetchBlocking(const pb::FetchPage& page, pb::Result& result, std::stop_token stop) {
  thread_local EasyHandle handle;
  Share& share = SharedCache();
  Transfer transfer;
  transfer.stop = stop;
  for (uint32_t attempt = 1;; ++attempt) {
    curl_easy_reset(handle.easy);
    curl_easy_setopt(handle.easy, CURLOPT_SHARE, share.get());
    Prepare(handle.easy, page, transfer);
    const CURLcode code = curl_easy_perform(handle.easy);
    Verdict verdict = Judge(handle.easy, code, transfer);
    if (verdict.kind != Verdict::kRetry || attempt > page.retries()) {
      return Finish(verdict, result, attempt);
    }
    const Duration wait = RetryDelay(attempt);
    spdlog::debug("{}; try {} of {} in {:.0f} ms", verdict.text, attempt + 1, page.retries() + 1,
                  ToMillis(wait));
    if (!SleepUnlessStopped(wait, stop)) return Finish({Verdict::kFail, "stopped"}, result);
  }
}

co::Task<void> FetchAsync(const pb::FetchPage& page, pb::Result& result, EventLoop& loop,
                          CurlMulti& http, std::stop_token stop) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), &curl_easy_cleanup);
  Transfer transfer;
  transfer.stop = stop;
  for (uint32_t attempt = 1;; ++attempt) {
    curl_easy_reset(easy.get());
    Prepare(easy.get(), page, transfer);
    const CURLcode code = co_await http.Perform(easy.get());
    Verdict verdict = Judge(easy.get(), code, transfer);
    if (verdict.kind != Verdict::kRetry || attempt > page.retries()) {
      Finish(verdict, result, attempt);
      co_return;
    }
    const Duration wait = RetryDelay(attempt);
    spdlog::debug("{}; try {} of {} in {:.0f} ms", verdict.text, attempt + 1, page.retries() + 1,
                  ToMillis(wait));
    co_await loop.Sleep(wait);
  }
}

}  // namespace fanout::jobs::web
