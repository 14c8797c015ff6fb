// The web job against a real `fanout pokedex` process: the FetchPage handler
// called directly (blocking, and as a coroutine on an event loop), then
// whole jobs through a real coordinator and workers.

#include <gtest/gtest.h>

#include <fstream>

#include "client/local_cluster.h"
#include "jobs/web/curl_multi.h"
#include "jobs/web/fetch.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Bulbasaur ... Raticate: pages 1-20 of ../shared/data/pokedex-151.tsv.
const std::vector<std::string> kFirstTwenty = {
    "Bulbasaur", "Ivysaur",   "Venusaur",  "Charmander", "Charmeleon", "Charizard", "Squirtle",
    "Wartortle", "Blastoise", "Caterpie",  "Metapod",    "Butterfree", "Weedle",    "Kakuna",
    "Beedrill",  "Pidgey",    "Pidgeotto", "Pidgeot",    "Rattata",    "Raticate"};

std::unique_ptr<client::LocalService> StartSite(std::vector<std::string> flags) {
  auto site = client::StartSite(FanoutBinary(), std::move(flags));
  EXPECT_TRUE(site.ok()) << site.error().message;
  return site ? std::move(*site) : nullptr;
}

pb::FetchPage Page(const std::string& url, uint32_t retries = 0, uint32_t timeout_ms = 5000) {
  pb::FetchPage page;
  page.set_url(url);
  page.set_retries(retries);
  page.set_timeout_ms(timeout_ms);
  return page;
}

pb::Result Blocking(const pb::FetchPage& page) {
  pb::Result result;
  jobs::web::FetchBlocking(page, result);
  return result;
}

// Runs FetchAsync for each page at once on one event loop, to completion.
std::vector<pb::Result> Async(const std::vector<pb::FetchPage>& pages, size_t* peak = nullptr) {
  EventLoop loop;
  jobs::web::CurlMulti http(loop);
  std::vector<pb::Result> results(pages.size());
  size_t done = 0;
  for (size_t i = 0; i < pages.size(); ++i) {
    co::Spawn([](const pb::FetchPage& page, pb::Result& r, EventLoop& l, jobs::web::CurlMulti& h,
                 size_t& d) -> co::Task<void> {
      co_await jobs::web::FetchAsync(page, r, l, h);
      ++d;
    }(pages[i], results[i], loop, http, done));
  }
  const TimePoint give_up = Now() + seconds(30);
  while (done < pages.size() && Now() < give_up) {
    if (peak) *peak = std::max(*peak, http.in_flight());
    loop.RunOnce(milliseconds(100));
  }
  EXPECT_EQ(done, pages.size()) << "transfers did not finish";
  return results;
}

pb::Result AsyncOne(const pb::FetchPage& page) { return Async({page})[0]; }

// ---- the handler against a real site -----------------------------------

TEST(FetchPageTest, FollowsTheRedirectToTheNamedPage) {
  auto site = StartSite({});
  ASSERT_TRUE(site);
  for (const pb::Result& r : {Blocking(Page(site->address() + "/pokedex/25")),
                              AsyncOne(Page(site->address() + "/pokedex/25"))}) {
    EXPECT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.text(), "Pikachu");
  }
}

TEST(FetchPageTest, NotFoundIsAFailedTaskNamingStatusAndUrl) {
  auto site = StartSite({});
  ASSERT_TRUE(site);
  const std::string url = site->address() + "/pokedex/999";
  for (const pb::Result& r : {Blocking(Page(url, 3)), AsyncOne(Page(url, 3))}) {
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error(), "HTTP 404 from " + url);
  }
}

TEST(FetchPageTest, ServiceUnavailableIsRetriedUntilItSucceeds) {
  // Each path answers 503 twice, then the page.
  auto site = StartSite({"--fail-first", "2"});
  ASSERT_TRUE(site);
  EXPECT_EQ(Blocking(Page(site->address() + "/pokedex/bulbasaur", 2)).text(), "Bulbasaur");
  EXPECT_EQ(AsyncOne(Page(site->address() + "/pokedex/ivysaur", 2)).text(), "Ivysaur");
  // With too few retries, the 503 is the error.
  const std::string url = site->address() + "/pokedex/venusaur";
  const pb::Result r = Blocking(Page(url, 1));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "HTTP 503 from " + url + " (after 2 tries)");
}

TEST(FetchPageTest, TimeoutShorterThanTheLatencyFailsWithinTheTimeout) {
  auto site = StartSite({"--latency-ms", "3000"});
  ASSERT_TRUE(site);
  for (bool async : {false, true}) {
    const pb::FetchPage page = Page(site->address() + "/pokedex/1", 0, 200);
    const TimePoint start = Now();
    const pb::Result r = async ? AsyncOne(page) : Blocking(page);
    const Duration took = Now() - start;
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error().find("timed out"), std::string::npos) << r.error();
    EXPECT_LT(took, milliseconds(2500)) << "not cut off by the timeout";  // the site answers at 3 s
  }
}

TEST(FetchPageTest, PagesOverTheCapAndPagesThatAreNotHtmlFail) {
  auto site = StartSite({});
  ASSERT_TRUE(site);
  pb::FetchPage big = Page(site->address() + "/pokedex/pikachu");
  big.set_max_body_bytes(100);
  for (const pb::Result& r : {Blocking(big), AsyncOne(big)}) {
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error().find("over the 100 byte cap"), std::string::npos) << r.error();
  }
  const pb::Result text = Blocking(Page(site->address() + "/healthz"));
  EXPECT_FALSE(text.ok());
  EXPECT_NE(text.error().find("not an HTML page"), std::string::npos) << text.error();
}

TEST(FetchPageTest, NetworkErrorsAreFailedTasksNotCrashes) {
  const pb::Result r = Blocking(Page("http://127.0.0.1:1/nothing", 1));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error().find("127.0.0.1:1/nothing"), std::string::npos) << r.error();
  EXPECT_FALSE(AsyncOne(Page("ftp://127.0.0.1/x")).ok());
}

TEST(FetchPageTest, AsyncHoldsHundredsOfRequestsInFlightOnOneThread) {
  auto site = StartSite({"--latency-ms", "300"});
  ASSERT_TRUE(site);
  std::vector<pb::FetchPage> pages;
  for (int i = 0; i < 300; ++i)
    pages.push_back(Page(site->address() + "/pokedex/pikachu?i=" + std::to_string(i)));
  size_t peak = 0;
  std::vector<pb::Result> results = Async(pages, &peak);
  for (const pb::Result& r : results) EXPECT_EQ(r.text(), "Pikachu") << r.error();
  EXPECT_EQ(peak, 300u) << "every request should be in flight at once";
}

// ---- whole jobs ----------------------------------------------------------

std::vector<std::string> WebArgs(const client::LocalCluster& cluster, const std::string& url,
                                 const std::string& model) {
  return {"submit",         "web",
          "--coordinator",  cluster.clients_endpoint(),
          "--url-template", url + "/pokedex/{n}",
          "--model",        model,
          "--json"};
}

void ExpectFirstTwenty(const nlohmann::json& j) {
  ASSERT_TRUE(j.is_object()) << "no JSON on the last line";
  EXPECT_EQ(j["kind"], "web");
  EXPECT_EQ(j["ok"], 20);
  ASSERT_EQ(j["results"].size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(j["results"][i]["index"], i + 1);
    EXPECT_EQ(j["results"][i]["value"], kFirstTwenty[i]) << j["results"][i]["error"];
  }
}

TEST(WebJobTest, TwentyPagesUnderEachModelInOrder) {
  auto site = StartSite({"--latency-ms", "20"});
  ASSERT_TRUE(site);
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  for (const std::string model : {"sync", "threads", "async"}) {
    SCOPED_TRACE(model);
    CommandResult r = RunFanout(WebArgs(**cluster, site->address(), model));
    ASSERT_EQ(r.status, 0) << r.err;
    ExpectFirstTwenty(r.Json());
    EXPECT_EQ(r.Json()["model"], model);
  }
}

TEST(WebJobTest, DrawsTheJobAsATimelineAndATrace) {
  auto site = StartSite({"--latency-ms", "20"});
  ASSERT_TRUE(site);
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  const std::string svg = (*cluster)->dir() + "/web.svg", trace = (*cluster)->dir() + "/web.json";
  std::vector<std::string> args = WebArgs(**cluster, site->address(), "async");
  args.insert(args.end(), {"--count", "5", "--timeline", svg, "--timeline", trace});
  CommandResult r = RunFanout(args);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string picture = ReadFile(svg);
  EXPECT_TRUE(picture.starts_with("<svg")) << picture.substr(0, 100);
  EXPECT_NE(picture.find("task 5: Charmeleon"), std::string::npos) << "a bar per task, titled";
  const nlohmann::json events = nlohmann::json::parse(ReadFile(trace))["traceEvents"];
  EXPECT_EQ(
      std::count_if(events.begin(), events.end(), [](const auto& e) { return e["ph"] == "X"; }), 5);
}

TEST(WebJobTest, PrintsTheArticlesLog) {
  auto site = StartSite({});
  ASSERT_TRUE(site);
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  std::vector<std::string> args = WebArgs(**cluster, site->address(), "async");
  args.pop_back();  // no --json
  args.insert(args.end(), {"--count", "3"});
  CommandResult r = RunFanout(args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Downloading Pokémon 02..."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Retrieved 02=Ivysaur"), std::string::npos) << r.out;
}

TEST(WebJobTest, ASiteFailingOneRequestInFiveStillYieldsAllTwentyThroughRetries) {
  auto site = StartSite({"--fail-rate", "0.2", "--seed", "7"});
  ASSERT_TRUE(site);
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  // Without retries the faults show (this also proves the site injects them)...
  std::vector<std::string> args = WebArgs(**cluster, site->address(), "threads");
  args.insert(args.end(), {"--retries", "0"});
  CommandResult bare = RunFanout(args);
  EXPECT_EQ(bare.status, 1) << "some pages should fail without retries";
  EXPECT_GT(bare.Json()["failed"].get<int>(), 0);
  // ...and with them every page arrives. Faults are a function of (seed,
  // path, request number), so this run is the same every time.
  args.back() = "6";
  CommandResult r = RunFanout(args);
  ASSERT_EQ(r.status, 0) << r.err;
  ExpectFirstTwenty(r.Json());
}

TEST(WebJobTest, PagesFromAUrlsFileWithFailuresInPlace) {
  auto site = StartSite({});
  ASSERT_TRUE(site);
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  const std::string list = cluster.value()->dir() + "/urls.txt";
  {
    std::ofstream out(list);
    out << "# a comment, then pages\n"
        << site->address() << "/pokedex/pikachu\n\n"
        << site->address() << "/pokedex/999\n"
        << site->address() << "/pokedex/151\n";
  }
  CommandResult r = RunFanout({"submit", "web", "--coordinator", (*cluster)->clients_endpoint(),
                               "--urls-file", list, "--model", "async", "--json"});
  EXPECT_EQ(r.status, 1) << "one page is missing";
  const nlohmann::json j = r.Json();
  ASSERT_EQ(j["tasks"], 3);
  EXPECT_EQ(j["results"][0]["value"], "Pikachu");
  EXPECT_EQ(j["results"][1]["error"], "HTTP 404 from " + site->address() + "/pokedex/999");
  EXPECT_EQ(j["results"][2]["value"], "Mew");
}

TEST(WebJobTest, BadWebUsageExits2WithOneLine) {
  CommandResult r = RunFanout({"submit", "web", "--coordinator", "tcp://127.0.0.1:1", "--urls-file",
                               "/nonexistent/urls.txt"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("cannot read /nonexistent/urls.txt"), std::string::npos) << r.err;
  auto cluster = client::LocalCluster::Start(ClusterWith(1));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  r = RunFanout({"submit", "web", "--coordinator", (*cluster)->clients_endpoint(), "--url-template",
                 "http://127.0.0.1/no-number"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("{n}"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fanout::testing
