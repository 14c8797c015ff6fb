#include "coordinator/job_kinds.h"

#include <gtest/gtest.h>

#include <limits>

namespace fanout::coordinator {
namespace {

pb::JobSpec MathSpec() {
  pb::JobSpec spec;
  spec.set_model(pb::SYNC);
  spec.set_count(20);
  spec.mutable_math()->set_start(1);
  spec.mutable_math()->set_iterations(2'000'000);
  return spec;
}

TEST(JobKindsTest, MathTaskStartsAtStartPlusIndexMinusOne) {
  pb::JobSpec spec = MathSpec();
  spec.mutable_math()->set_start(10);
  pb::Task task;
  FillPayload(spec, 3, "", &task);
  EXPECT_EQ(task.math().start(), 12.0);
  EXPECT_EQ(task.math().iterations(), 2'000'000u);
}

TEST(JobKindsTest, AcceptsTheClassicJob) { EXPECT_TRUE(ValidateSpec(MathSpec()).ok()); }

TEST(JobKindsTest, RejectsAbsurdValuesWithReasons) {
  struct Case {
    const char* name;
    void (*mutate)(pb::JobSpec&);
    const char* reason;
  };
  const Case cases[] = {
      {"no model", [](pb::JobSpec& s) { s.set_model(pb::MODEL_UNSPECIFIED); }, "model must be"},
      {"count 0", [](pb::JobSpec& s) { s.set_count(0); }, "count must be between 1 and"},
      {"count 1e9", [](pb::JobSpec& s) { s.set_count(1'000'000'000); }, "(got 1000000000)"},
      {"concurrency", [](pb::JobSpec& s) { s.set_concurrency(1'000'000); }, "concurrency must"},
      {"attempts", [](pb::JobSpec& s) { s.set_max_attempts(1000); }, "max attempts must"},
      {"no kind", [](pb::JobSpec& s) { s.clear_math(); }, "unknown job kind"},
      {"nan start",
       [](pb::JobSpec& s) {
         s.mutable_math()->set_start(std::numeric_limits<double>::quiet_NaN());
       },
       "finite"},
      {"iterations", [](pb::JobSpec& s) { s.mutable_math()->set_iterations(1ull << 60); },
       "iterations must be at most"},
  };
  for (const Case& c : cases) {
    pb::JobSpec spec = MathSpec();
    c.mutate(spec);
    Status s = ValidateSpec(spec);
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_NE(s.error().message.find(c.reason), std::string::npos)
        << c.name << ": " << s.error().message;
  }
}

pb::JobSpec WebSpec() {
  pb::JobSpec spec;
  spec.set_model(pb::ASYNC);
  spec.set_count(20);
  spec.mutable_web()->set_url_template("http://127.0.0.1:8081/pokedex/{n}");
  spec.mutable_web()->set_start(1);
  spec.mutable_web()->set_retries(2);
  return spec;
}

TEST(JobKindsTest, WebTaskFetchesTheTemplatesPageNumber) {
  pb::JobSpec spec = WebSpec();
  spec.mutable_web()->set_start(5);
  spec.mutable_web()->set_timeout_ms(1500);
  ASSERT_TRUE(ValidateSpec(spec).ok());
  pb::Task task;
  FillPayload(spec, 3, "", &task);
  EXPECT_EQ(task.fetch_page().url(), "http://127.0.0.1:8081/pokedex/7");
  EXPECT_EQ(task.fetch_page().timeout_ms(), 1500u);
  EXPECT_EQ(task.fetch_page().retries(), 2u);
  EXPECT_EQ(ExpandTemplate("http://h/{n}/x?n={n}", 12), "http://h/12/x?n=12");
}

TEST(JobKindsTest, WebTaskFromAListTakesItsOwnUrl) {
  pb::JobSpec spec = WebSpec();
  spec.mutable_web()->clear_url_template();
  spec.set_count(2);
  spec.mutable_web()->add_urls("http://a.example/one");
  spec.mutable_web()->add_urls("https://b.example/two");
  ASSERT_TRUE(ValidateSpec(spec).ok());
  pb::Task task;
  FillPayload(spec, 2, "", &task);
  EXPECT_EQ(task.fetch_page().url(), "https://b.example/two");
}

TEST(JobKindsTest, RejectsBadWebJobsWithReasons) {
  auto reason = [](const pb::JobSpec& spec) {
    Status s = ValidateSpec(spec);
    return s ? std::string("accepted") : s.error().message;
  };
  pb::JobSpec spec = WebSpec();
  spec.mutable_web()->set_url_template("ftp://host/{n}");
  EXPECT_NE(reason(spec).find("http://"), std::string::npos);
  spec.mutable_web()->set_url_template("http://host/page");
  EXPECT_NE(reason(spec).find("{n}"), std::string::npos);
  spec = WebSpec();
  spec.mutable_web()->set_retries(1000);
  EXPECT_NE(reason(spec).find("retries"), std::string::npos);
  spec = WebSpec();
  spec.mutable_web()->clear_url_template();
  spec.mutable_web()->add_urls("http://a.example/");
  EXPECT_NE(reason(spec).find("must equal the number of URLs"), std::string::npos);
  spec.set_count(1);
  EXPECT_EQ(reason(spec), "accepted");
  spec.mutable_web()->set_url_template("http://x/{n}");
  EXPECT_NE(reason(spec).find("not both"), std::string::npos);
}

}  // namespace
}  // namespace fanout::coordinator
