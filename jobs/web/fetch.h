// The FetchPage task: download a page with libcurl and return its first
// <h1>. Blocking (sync and threads models: one easy handle per thread,
// connections shared between threads through a share handle) or as a
// coroutine on the async loop (libcurl's multi interface, see curl_multi.h).
//
// Each try follows at most 10 redirects within the task's timeout; a 5xx, a
// 429 or a network error is tried again after an exponential back-off with
// jitter, up to FetchPage.retries more times. A 4xx, a page that is not
// HTML, one without <h1> or one over the size cap is a failed task with the
// status and URL in its error. Nothing here fails the worker.
#pragma once

#include <curl/curl.h>

#include <stop_token>
#include <string>

#include "common/clock.h"
#include "common/codec.h"
#include "common/coro.h"
#include "common/event_loop.h"
#include "jobs/web/curl_multi.h"

namespace fanout::jobs::web {

inline constexpr uint32_t kDefaultTimeoutMs = 10'000;
inline constexpr uint64_t kDefaultMaxBodyBytes = 8 << 20;

// One try of a transfer: what libcurl reported and what arrived.
struct Transfer {
  std::string url;
  uint64_t max_body_bytes = kDefaultMaxBodyBytes;
  std::string body;
  bool too_big = false;
  char error[CURL_ERROR_SIZE] = {};
  std::stop_token stop;  // requested: the transfer is aborted
};

// What a try means for the task.
struct Verdict {
  enum Kind { kOk, kRetry, kFail } kind;
  std::string text;  // the <h1> text, or the error
};

// Sets up `easy` for one try of `page` writing into `transfer`.
void Prepare(CURL* easy, const pb::FetchPage& page, Transfer& transfer);
// Judges a finished try.
Verdict Judge(CURL* easy, CURLcode code, const Transfer& transfer);
// Back-off before try `attempt` + 1 (attempt >= 1): 100 ms doubling, capped
// at 5 s, with +-50% jitter.
Duration RetryDelay(uint32_t attempt);

void FetchBlocking(const pb::FetchPage& page, pb::Result& result, std::stop_token stop = {});
co::Task<void> FetchAsync(const pb::FetchPage& page, pb::Result& result, EventLoop& loop,
                          CurlMulti& http, std::stop_token stop = {});

}  // namespace fanout::jobs::web
