#include "http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "http/fetch.h"
#include "http/metrics.h"

namespace fanout::http {
namespace {

std::map<std::string, Handler> Routes() {
  return {
      {"/",
       [](const Request&) {
         return Response{200, "text/html", "<h1>page</h1>"};
       }},
      {"/api/",
       [](const Request& r) {
         return Response{200, "text/plain", "api " + r.path};
       }},
      {"/api/status",
       [](const Request&) {
         return Response{200, "application/json", "{}"};
       }},
      {"/boom", [](const Request&) -> Response { throw std::runtime_error("boom"); }},
  };
}

TEST(HttpServerTest, ServesExactPathsAndTheLongestPrefixAnd404sTheRest) {
  auto server = Server::Start({.address = "127.0.0.1:0"}, Routes());
  ASSERT_TRUE(server.ok()) << server.error().message;
  const std::string url = (*server)->url();
  EXPECT_GT((*server)->port(), 0);
  EXPECT_EQ(Fetch(url + "/").body, "<h1>page</h1>");
  EXPECT_EQ(Fetch(url + "/api/status").body, "{}");
  EXPECT_EQ(Fetch(url + "/api/jobs/j-1").body, "api /api/jobs/j-1");
  Fetched missing = Fetch(url + "/nowhere");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "no page /nowhere\n");
  Fetched boom = Fetch(url + "/boom");
  EXPECT_EQ(boom.status, 500) << "a handler's exception is a 500, not a dead server";
  EXPECT_EQ(Fetch(url + "/").status, 200) << "and it still serves";
}

TEST(HttpServerTest, WithATokenEveryRequestNeedsItAsBearerOrCookie) {
  const std::string token = "0123456789abcdef0123456789abcdef";
  auto server = Server::Start({.address = "127.0.0.1:0", .token = token}, Routes());
  ASSERT_TRUE(server.ok()) << server.error().message;
  const std::string url = (*server)->url();
  Fetched none = Fetch(url + "/api/status");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("http.token"), std::string::npos) << none.body;
  EXPECT_NE(none.headers.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_EQ(Fetch(url + "/api/status", {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(Fetch(url + "/api/status", {"Authorization: Bearer " + token}).status, 200);
  // A browser: /?token= once sets a cookie and sends it back to /.
  Fetched login = Fetch(url + "/?token=" + token);
  EXPECT_EQ(login.status, 303);
  EXPECT_NE(login.headers.find("Set-Cookie: fanout_token=" + token + "; Path=/; HttpOnly"),
            std::string::npos)
      << login.headers;
  EXPECT_EQ(Fetch(url + "/?token=nope").status, 401);
  EXPECT_EQ(Fetch(url + "/api/status", {"Cookie: theme=dark; fanout_token=" + token}).status, 200);
  EXPECT_EQ(Fetch(url + "/api/status", {"Cookie: xfanout_token=" + token}).status, 401);
}

TEST(HttpServerTest, HealthChecksNeedNoTokenAndNothingElseIsOpen) {
  std::map<std::string, Handler> routes = Routes();
  routes["/healthz"] = [](const Request&) { return Response{200, "text/plain", "ok\n"}; };
  auto server = Server::Start({.address = "127.0.0.1:0", .token = std::string(32, 't')}, routes);
  ASSERT_TRUE(server.ok()) << server.error().message;
  EXPECT_EQ(Fetch((*server)->url() + "/healthz").status, 200);
  EXPECT_EQ(Fetch((*server)->url() + "/healthz/x").status, 401);
  EXPECT_EQ(Fetch((*server)->url() + "/").status, 401);
}

TEST(HttpServerTest, APortAlreadyTakenIsAnErrorThatSaysSo) {
  auto first = Server::Start({.address = "127.0.0.1:0"}, Routes());
  ASSERT_TRUE(first.ok());
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = Server::Start({.address = taken}, Routes());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("cannot serve HTTP on " + taken), std::string::npos)
      << second.error().message;
  EXPECT_FALSE(Server::Start({.address = "no-port"}, Routes()).ok());
}

TEST(HttpServerTest, ManyClientsAtOnce) {
  std::atomic<int> served{0};
  std::map<std::string, Handler> routes = {{"/n", [&](const Request&) {
                                              ++served;
                                              return Response{200, "text/plain", "n"};
                                            }}};
  auto server = Server::Start({.address = "127.0.0.1:0"}, routes);
  ASSERT_TRUE(server.ok());
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 20; ++i) ok += Fetch((*server)->url() + "/n").body == "n";
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(ok.load(), 320);
  EXPECT_EQ(served.load(), 320);
}

TEST(MetricsTest, TaskCountsMoveIntoTheRegistryAsTheyGrowAndParse) {
  prometheus::Registry registry;
  TaskMetrics metrics(registry, "x_", "here", {"math", "web"});
  TaskCounts counts;
  counts.Count(0, 1, true, 0.02);  // math, threads, ok, 20 ms
  counts.Count(0, 1, false, 2);
  counts.Count(1, 2, true, -1);  // web, async: never ran (no duration)
  counts.Count(7, 0, true, 1);   // a kind with no label: counted, not shown
  counts.Count(0, 5, true, 1);   // no such model: ignored
  metrics.Update(counts);
  counts.Count(0, 1, true, 0.02);
  metrics.Update(counts);
  const std::string text = Exposition(registry);
  EXPECT_NE(text.find("x_tasks_total{kind=\"math\",model=\"threads\",outcome=\"ok\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("x_tasks_total{kind=\"math\",model=\"threads\",outcome=\"failed\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("x_tasks_total{kind=\"web\",model=\"async\",outcome=\"ok\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("x_task_duration_seconds_count{kind=\"math\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_task_duration_seconds_bucket{kind=\"math\",le=\"0.05\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("x_task_duration_seconds_count{kind=\"web\"} 0\n"), std::string::npos)
      << "every kind's series exists from the start";
  EXPECT_NE(text.find("# TYPE x_tasks_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE process_resident_memory_bytes gauge\n"), std::string::npos);
  EXPECT_NE(text.find("process_start_time_seconds 1"), std::string::npos);
}

TEST(MetricsTest, TheHttpRuleIsTheEndpointsRule) {
  EXPECT_TRUE(Secured("127.0.0.1:0", nullptr, false).ok());
  Result<ServerOptions> open = Secured("0.0.0.0:9100", nullptr, false);
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.error().code, Error::Code::kInvalidArgument);
  EXPECT_NE(open.error().message.find("--http: listening on tcp://0.0.0.0:9100 without keys"),
            std::string::npos)
      << open.error().message;
  EXPECT_TRUE(Secured("0.0.0.0:9100", nullptr, /*insecure=*/true).ok());
}

TEST(HttpServerTest, QueryValuesAreDecoded) {
  EXPECT_EQ(QueryValue("a=1&token=x%2By&b=2", "token"), "x+y");
  EXPECT_EQ(QueryValue("token=a+b", "token"), "a b");
  EXPECT_EQ(QueryValue("tokenx=1", "token"), "");
  EXPECT_EQ(QueryValue("", "token"), "");
}

}  // namespace
}  // namespace fanout::http
