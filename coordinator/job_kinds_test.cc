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
  FillPayload(spec, 3, &task);
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

}  // namespace
}  // namespace fanout::coordinator
