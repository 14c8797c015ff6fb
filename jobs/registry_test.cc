#include "jobs/registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <set>

#include "jobs/bank/bank.h"
#include "jobs/exec/command.h"
#include "jobs/math/math.h"
#include "jobs/web/web.h"

namespace fanout::jobs {
namespace {

// Task `index` of `spec`, as the coordinator builds it.
pb::Task FillPayload(const pb::JobSpec& spec, uint32_t index, const std::string& ledger) {
  pb::Task task;
  task.set_job_id("job-1");
  Kinds().For(spec)->FillTask(spec, index, CoordinatorEnv{.ledger = ledger}, &task);
  return task;
}

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
  const pb::Task task = FillPayload(spec, 3, "");
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
  const pb::Task task = FillPayload(spec, 3, "");
  EXPECT_EQ(task.fetch_page().url(), "http://127.0.0.1:8081/pokedex/7");
  EXPECT_EQ(task.fetch_page().timeout_ms(), 1500u);
  EXPECT_EQ(task.fetch_page().retries(), 2u);
  EXPECT_EQ(web::ExpandTemplate("http://h/{n}/x?n={n}", 12), "http://h/12/x?n=12");
}

TEST(JobKindsTest, WebTaskFromAListTakesItsOwnUrl) {
  pb::JobSpec spec = WebSpec();
  spec.mutable_web()->clear_url_template();
  spec.set_count(2);
  spec.mutable_web()->add_urls("http://a.example/one");
  spec.mutable_web()->add_urls("https://b.example/two");
  ASSERT_TRUE(ValidateSpec(spec).ok());
  EXPECT_EQ(FillPayload(spec, 2, "").fetch_page().url(), "https://b.example/two");
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

// ---- the registry -------------------------------------------------------------

TEST(RegistryTest, EveryKindIsRegisteredOnceAndFoundEveryWay) {
  const Registry& kinds = Kinds();
  std::set<std::string> names;
  std::set<int> specs, payloads;
  for (const auto& kind : kinds.all()) {
    const std::string name(kind->name());
    EXPECT_TRUE(names.insert(name).second) << "two kinds named " << name;
    EXPECT_TRUE(specs.insert(kind->spec_case()).second) << name;
    EXPECT_TRUE(payloads.insert(kind->payload_case()).second) << name;
    EXPECT_EQ(kinds.Find(name), kind.get());
    EXPECT_FALSE(kind->summary().empty()) << name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"math", "web", "bank", "exec", "call"}));
  // Every kind of the protocol has a home, and nothing else does.
  EXPECT_EQ(specs.size(),
            static_cast<size_t>(pb::JobSpec::descriptor()->oneof_decl(0)->field_count()));
  EXPECT_EQ(payloads.size(),
            static_cast<size_t>(pb::Task::descriptor()->oneof_decl(0)->field_count()));
  pb::JobSpec spec;
  spec.mutable_exec();
  EXPECT_EQ(kinds.For(spec)->name(), "exec");
  pb::Task task;
  task.mutable_transfer();
  EXPECT_EQ(kinds.For(task)->name(), "bank");
  EXPECT_EQ(kinds.Find("sumbit"), nullptr);
  EXPECT_EQ(kinds.Names(), "math, web, bank, exec or call");
}

// Parses `fanout submit KIND args...` with the kind's own flags.
bool Parses(std::string_view kind, std::vector<std::string> args) {
  CLI::App app("test");
  std::unique_ptr<SubmitFlags> flags = Kinds().Find(kind)->AddSubmitFlags(app);
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
    return true;
  } catch (const CLI::ParseError&) {
    return false;
  }
}

// The command line's ranges are the kinds' limits: a value the coordinator
// takes parses, one past it does not.
TEST(RegistryTest, FlagRangesAreTheKindsLimits) {
  struct Case {
    std::string kind, flag;
    uint64_t max;
    void (*set)(pb::JobSpec&, uint64_t);
    std::vector<std::string> extra;
  };
  const std::vector<Case> cases = {
      {"web",
       "--retries",
       web::kMaxRetries,
       [](pb::JobSpec& s, uint64_t v) { s.mutable_web()->set_retries(static_cast<uint32_t>(v)); },
       {}},
      {"web",
       "--timeout-ms",
       web::kMaxTimeoutMs,
       [](pb::JobSpec& s, uint64_t v) {
         s.mutable_web()->set_timeout_ms(static_cast<uint32_t>(v));
       },
       {}},
      {"math",
       "--iterations",
       math::kMaxIterations,
       [](pb::JobSpec& s, uint64_t v) { s.mutable_math()->set_iterations(v); },
       {}},
      {"math",
       "--count",
       kMaxTasksPerJob,
       [](pb::JobSpec& s, uint64_t v) { s.set_count(static_cast<uint32_t>(v)); },
       {}},
      {"bank",
       "--accounts",
       bank::kMaxAccounts,
       [](pb::JobSpec& s, uint64_t v) { s.mutable_bank()->set_accounts(static_cast<uint32_t>(v)); },
       {}},
      {"bank",
       "--verify-ms",
       bank::kMaxVerifyMs,
       [](pb::JobSpec& s, uint64_t v) {
         s.mutable_bank()->set_verify_ms(static_cast<uint32_t>(v));
       },
       {}},
      {"bank",
       "--gap-us",
       bank::kMaxGapUs,
       [](pb::JobSpec& s, uint64_t v) { s.mutable_bank()->set_gap_us(static_cast<uint32_t>(v)); },
       {}},
      {"exec",
       "--retries",
       exec::kMaxRetries,
       [](pb::JobSpec& s, uint64_t v) { s.mutable_exec()->set_retries(static_cast<uint32_t>(v)); },
       {"--", "true"}},
      {"exec",
       "--timeout-ms",
       exec::kMaxTimeoutMs,
       [](pb::JobSpec& s, uint64_t v) {
         s.mutable_exec()->set_timeout_ms(static_cast<uint32_t>(v));
       },
       {"--", "true"}},
      {"exec",
       "--max-output-bytes",
       exec::kMaxOutputBytes,
       [](pb::JobSpec& s, uint64_t v) { s.mutable_exec()->set_max_output_bytes(v); },
       {"--", "true"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.kind + " " + c.flag);
    auto args = [&](uint64_t v) {
      std::vector<std::string> a = {c.flag, std::to_string(v)};
      a.insert(a.end(), c.extra.begin(), c.extra.end());
      return a;
    };
    EXPECT_TRUE(Parses(c.kind, args(c.max)));
    EXPECT_FALSE(Parses(c.kind, args(c.max + 1)));
    pb::JobSpec spec;
    spec.set_model(pb::SYNC);
    spec.set_count(1);
    if (c.kind == "math") spec.mutable_math()->set_iterations(1);
    if (c.kind == "web") *spec.mutable_web() = WebSpec().web();
    if (c.kind == "bank") {
      spec.mutable_bank()->set_accounts(5);
      spec.mutable_bank()->set_amount_max(10);
      spec.mutable_bank()->set_mode(pb::ATOMIC);
    }
    if (c.kind == "exec") {
      spec.mutable_exec()->add_command("true");
      spec.mutable_exec()->add_items("a");
    }
    c.set(spec, c.max);
    EXPECT_TRUE(ValidateSpec(spec).ok()) << ValidateSpec(spec).error().message;
    c.set(spec, c.max + 1);
    EXPECT_FALSE(ValidateSpec(spec).ok());
  }
}

TEST(RegistryTest, AJobTooBigForOneFrameIsRefusedWithItsSize) {
  pb::JobSpec spec;
  spec.set_model(pb::SYNC);
  pb::ExecJob* job = spec.mutable_exec();
  job->add_command("echo");
  for (int i = 0; i < 2'000'000; ++i) job->add_items(fmt::format("item-{}", i));
  spec.set_count(2'000'000);
  Status s = CheckSpecSize(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("a job may carry at most"), std::string::npos)
      << s.error().message;
  job->mutable_items()->DeleteSubrange(1000, job->items_size() - 1000);
  EXPECT_TRUE(CheckSpecSize(spec).ok());
}

TEST(RegistryTest, BankPlansAreAFunctionOfSeedAndIndex) {
  pb::BankJob b;
  b.set_accounts(5);
  b.set_amount_max(100);
  b.set_seed(7);
  for (uint32_t i = 1; i <= 100; ++i) {
    const bank::PlannedTransfer t = bank::PlanTransfer(b, i);
    EXPECT_NE(t.from, t.to);
    EXPECT_GE(t.from, 1u);
    EXPECT_LE(t.to, 5u);
    EXPECT_GE(t.amount, 1);
    EXPECT_LE(t.amount, 100);
    EXPECT_EQ(bank::PlanTransfer(b, i).amount, t.amount);
  }
}

TEST(RegistryTest, ExecTasksCarryTheCommandAndTheirItem) {
  pb::JobSpec spec;
  spec.set_model(pb::ASYNC);
  spec.set_count(2);
  pb::ExecJob* job = spec.mutable_exec();
  for (const char* a : {"convert", "{}", "out-{#}.png"}) job->add_command(a);
  job->add_items("a b.jpg");
  job->add_items("c.jpg");
  job->set_timeout_ms(2000);
  ASSERT_TRUE(ValidateSpec(spec).ok());
  const pb::Task task = FillPayload(spec, 2, "");
  EXPECT_EQ(task.exec().item(), "c.jpg");
  EXPECT_EQ(task.exec().command_size(), 3);
  EXPECT_EQ(task.exec().timeout_ms(), 2000u);
  // With a timeout the coordinator waits out every try before running it elsewhere.
  EXPECT_GT(*Kinds().Find("exec")->TaskDeadline(spec), milliseconds(2000));
  job->set_timeout_ms(0);
  EXPECT_EQ(*Kinds().Find("exec")->TaskDeadline(spec), Duration::zero());

  job->add_items(std::string("nul\0byte", 8));
  spec.set_count(3);
  EXPECT_NE(ValidateSpec(spec).error().message.find("NUL"), std::string::npos);
  job->mutable_items()->RemoveLast();
  spec.set_count(2);
  job->clear_command();
  EXPECT_NE(ValidateSpec(spec).error().message.find("no command"), std::string::npos);
}

TEST(RegistryTest, ABankJobsVerdictSaysWhetherMoneyWasLostOrCreated) {
  pb::JobSpec spec;
  spec.set_count(10);
  spec.mutable_bank()->set_mode(pb::UNSAFE);
  pb::JobDone done;
  done.mutable_ledger()->set_expected_sum(1000);
  auto verdict = [&](int64_t sum) {
    done.mutable_ledger()->set_sum(sum);
    return *Kinds().For(spec)->Verify(spec, {}, done);
  };
  EXPECT_EQ(verdict(1000).text, "sum 1000 right");
  EXPECT_FALSE(verdict(1000).warning);
  EXPECT_EQ(verdict(950).text, "sum 950: 50 lost");
  EXPECT_EQ(verdict(1020).text, "sum 1020: 20 created");
  // Unsafe transfers losing money is the lesson: a warning (the command exits 1).
  EXPECT_TRUE(verdict(950).warning);
  // Under a lock it is a bug.
  spec.mutable_bank()->set_mode(pb::LOCKED);
  EXPECT_FALSE(verdict(950).right);
  EXPECT_FALSE(verdict(950).warning);
}

}  // namespace
}  // namespace fanout::jobs
