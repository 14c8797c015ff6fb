// A small blocking HTTP client (libcurl) for tests and `fanout health`.
//
//   http::Fetched r = http::Fetch("http://127.0.0.1:5580/metrics");
//   if (r.status == 200) Parse(r.body);
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"

namespace fanout::http {

struct Fetched {
  long status = 0;  // 0: no answer (then `error` says why)
  std::string body;
  std::string headers;  // as received, "Name: value\r\n" each
  std::string error;
};

Fetched Fetch(const std::string& url, const std::vector<std::string>& headers = {},
              const std::string& method = "GET", Duration timeout = milliseconds(5000));

}  // namespace fanout::http
