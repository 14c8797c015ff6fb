#include <gtest/gtest.h>

#include "pokedex/http_server.h"
#include "pokedex/site.h"

namespace fanout::pokedex {
namespace {

HttpRequest Get(std::string target) {
  HttpRequest r;
  r.method = "GET";
  r.target = std::move(target);
  return r;
}

std::string Header(const HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(PokedexDataTest, HasAll151InOrderWithPokemondbSlugs) {
  const auto& all = Pokedex();
  ASSERT_EQ(all.size(), 151u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].number, static_cast<int>(i + 1));
  EXPECT_EQ(all[0].name, "Bulbasaur");
  EXPECT_EQ(all[24].slug, "pikachu");
  EXPECT_EQ(all[150].name, "Mew");
  EXPECT_EQ(Slug("Nidoran♀"), "nidoran-f");
  EXPECT_EQ(Slug("Nidoran♂"), "nidoran-m");
  EXPECT_EQ(Slug("Farfetch'd"), "farfetchd");
  EXPECT_EQ(Slug("Mr. Mime"), "mr-mime");
}

TEST(SiteTest, NumberRedirectsToNamedPageWithOneH1) {
  Site site({});
  HttpResponse moved = site.Handle(Get("/pokedex/25"));
  EXPECT_EQ(moved.status, 301);
  EXPECT_EQ(Header(moved, "Location"), "/pokedex/pikachu");
  HttpResponse page = site.Handle(Get("/pokedex/pikachu"));
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<title>Pikachu Pokédex"), std::string::npos);
  EXPECT_NE(page.body.find("<h1>Pikachu</h1>"), std::string::npos);
  EXPECT_EQ(page.body.find("<h1>"), page.body.rfind("<h1>"));
  EXPECT_NE(page.body.find("<table"), std::string::npos);
}

TEST(SiteTest, UnknownPagesAre404AndOtherMethods405) {
  Site site({});
  EXPECT_EQ(site.Handle(Get("/pokedex/0")).status, 404);
  EXPECT_EQ(site.Handle(Get("/pokedex/152")).status, 404);
  EXPECT_EQ(site.Handle(Get("/pokedex/missingno")).status, 404);
  EXPECT_EQ(site.Handle(Get("/nowhere")).status, 404);
  HttpRequest post = Get("/pokedex/1");
  post.method = "POST";
  EXPECT_EQ(site.Handle(post).status, 405);
}

TEST(SiteTest, LatencyAndJitterStayInRangeButHealthzIsImmediate) {
  SiteOptions options;
  options.latency = milliseconds(100);
  options.jitter = milliseconds(20);
  options.seed = 7;
  Site site(options);
  for (int i = 0; i < 50; ++i) {
    const Duration d = site.Handle(Get("/pokedex/1")).delay;
    EXPECT_GE(d, milliseconds(80));
    EXPECT_LE(d, milliseconds(120));
  }
  EXPECT_EQ(site.Handle(Get("/healthz")).delay, Duration::zero());
}

TEST(SiteTest, FailFirstThenServes) {
  SiteOptions options;
  options.fail_first = 2;
  Site site(options);
  EXPECT_EQ(site.Handle(Get("/pokedex/bulbasaur")).status, 503);
  EXPECT_EQ(site.Handle(Get("/pokedex/bulbasaur")).status, 503);
  EXPECT_EQ(site.Handle(Get("/pokedex/bulbasaur")).status, 200);
  EXPECT_EQ(site.Handle(Get("/pokedex/ivysaur")).status, 503);  // counted per path
  EXPECT_EQ(site.Handle(Get("/healthz")).status, 200);
}

TEST(SiteTest, FailRateIsNearTheShareAndReproducible) {
  int failed = 0;
  for (uint64_t n = 1; n <= 10000; ++n) failed += FailsAt(42, "/pokedex/1", n, 0.2);
  EXPECT_NEAR(failed / 10000.0, 0.2, 0.02);
  EXPECT_EQ(FailsAt(42, "/pokedex/1", 5, 0.5), FailsAt(42, "/pokedex/1", 5, 0.5));
  int differs = 0;
  for (uint64_t n = 1; n <= 100; ++n) {
    differs += FailsAt(1, "/a", n, 0.5) != FailsAt(2, "/a", n, 0.5);
  }
  EXPECT_GT(differs, 20);  // the seed matters
  EXPECT_FALSE(FailsAt(42, "/pokedex/1", 1, 0.0));
  EXPECT_TRUE(FailsAt(42, "/pokedex/1", 1, 1.0));
}

TEST(HttpParseTest, RequestsWithHeadersBodiesAndKeepAlive) {
  HttpRequest r;
  EXPECT_EQ(*ParseRequest("GET /pokedex/1 HTTP/1.1\r\nHost: x\r\n", r), 0u);  // incomplete
  const std::string get = "GET /pokedex/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
  EXPECT_EQ(*ParseRequest(get, r), get.find("GET /next"));
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/pokedex/1");
  EXPECT_TRUE(r.keep_alive);
  const std::string post = "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc";
  EXPECT_EQ(*ParseRequest(post, r), post.size());
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(*ParseRequest("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", r), 0u);
  EXPECT_TRUE(ParseRequest("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", r).ok());
  EXPECT_FALSE(r.keep_alive);
}

TEST(HttpParseTest, MalformedRequestsAreErrors) {
  HttpRequest r;
  for (std::string bad :
       {"garbage\r\n\r\n", "GET / SPDY/9\r\n\r\n", "GET nope HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nno colon\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    EXPECT_FALSE(ParseRequest(bad, r).ok()) << bad;
  }
  EXPECT_FALSE(ParseRequest(std::string(20000, 'a'), r).ok());  // headers never end
}

TEST(HttpParseTest, ResponsesCarryLengthAndNoBodyForHead) {
  HttpResponse r = Html(301, "moved");
  r.headers.emplace_back("Location", "/pokedex/pikachu");
  const std::string full = SerializeResponse(r, true, false);
  EXPECT_TRUE(full.starts_with("HTTP/1.1 301 Moved Permanently\r\n"));
  EXPECT_NE(full.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_NE(full.find("Location: /pokedex/pikachu\r\n"), std::string::npos);
  EXPECT_TRUE(full.ends_with("\r\n\r\nmoved"));
  EXPECT_TRUE(SerializeResponse(r, false, true)
                  .ends_with("Connection: close\r\nLocation: /pokedex/pikachu\r\n\r\n"));
}

}  // namespace
}  // namespace fanout::pokedex
