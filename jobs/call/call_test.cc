#include "jobs/call/call.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "jobs/call/functions.h"
#include "jobs/registry.h"

namespace fanout::jobs {
namespace {

// `fanout submit call args...` parsed into a spec, or the parse's error.
Result<pb::JobSpec> Submitted(std::vector<std::string> args) {
  CLI::App app("test");
  std::unique_ptr<SubmitFlags> flags = Kinds().Find("call")->AddSubmitFlags(app);
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return InvalidArgument("{}", e.what());
  }
  pb::JobSpec spec;
  if (Status s = flags->Fill(spec); !s) return s.error();
  if (Status s = Kinds().Find("call")->Validate(spec); !s) return s.error();
  return spec;
}

// One call task run by a worker serving `functions`.
pb::Result Call(std::shared_ptr<Functions> functions, const std::string& name,
                const std::string& arg) {
  Result<std::unique_ptr<Runner>> runner =
      Kinds().Find("call")->NewRunner(WorkerEnv{.worker_id = "w1",
                                                .allow_exec = false,
                                                .exec_allowed = {},
                                                .keys = nullptr,
                                                .functions = std::move(functions)});
  EXPECT_TRUE(runner.ok());
  pb::Task task;
  task.mutable_call()->set_name(name);
  task.mutable_call()->set_arg(arg);
  pb::Result result;
  (*runner)->RunBlocking(task, result, {});
  return result;
}

TEST(CallKindTest, NamesAreShortAndPlain) {
  EXPECT_TRUE(CheckFunctionName("resize").ok());
  EXPECT_TRUE(CheckFunctionName("images.resize:v2/small-1_x").ok());
  EXPECT_FALSE(CheckFunctionName("").ok());
  EXPECT_FALSE(CheckFunctionName("two words").ok());
  EXPECT_FALSE(CheckFunctionName("caf\xc3\xa9").ok());
  EXPECT_TRUE(CheckFunctionName(std::string(kMaxFunctionName, 'a')).ok());
  Status long_name = CheckFunctionName(std::string(kMaxFunctionName + 1, 'a'));
  ASSERT_FALSE(long_name.ok());
  EXPECT_EQ(long_name.error().message,
            "a function's name has at most 100 characters (this one has 101)");
}

TEST(CallKindTest, ANameIsServedOnce) {
  Functions functions;
  auto echo = [](std::string_view s) -> Result<std::string> { return std::string(s); };
  ASSERT_TRUE(functions.Add("echo", echo).ok());
  Status again = functions.Add("echo", echo);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, "function 'echo' is served twice");
  EXPECT_FALSE(functions.Add("bad name", echo).ok());
  EXPECT_EQ(functions.names(), std::vector<std::string>{"echo"});
  EXPECT_NE(functions.Find("echo"), nullptr);
  EXPECT_EQ(functions.Find("other"), nullptr);
}

TEST(CallKindTest, SubmitTakesANameAndOneTaskPerItem) {
  Result<pb::JobSpec> spec = Submitted({"resize", "--arg", "a.png", "--arg", "b c.png"});
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->call().name(), "resize");
  EXPECT_EQ(spec->count(), 2u);
  pb::Task task;
  Kinds().For(*spec)->FillTask(*spec, 2, CoordinatorEnv{}, &task);
  EXPECT_EQ(task.call().name(), "resize");
  EXPECT_EQ(task.call().arg(), "b c.png");
  EXPECT_EQ(Kinds().For(*spec)->RoutingName(*spec), "resize");
  EXPECT_FALSE(Submitted({"--arg", "x"}).ok()) << "a name is required";
  Result<pb::JobSpec> bad = Submitted({"no/good name", "--arg", "x"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("is not a function name"), std::string::npos);
}

TEST(CallKindTest, AValueIsTextOrDataAndAnErrorOrExceptionFailsTheTask) {
  auto functions = std::make_shared<Functions>();
  ASSERT_TRUE(functions
                  ->Add("reverse",
                        [](std::string_view s) -> Result<std::string> {
                          return std::string(s.rbegin(), s.rend());
                        })
                  .ok());
  ASSERT_TRUE(functions
                  ->Add("refuse",
                        [](std::string_view s) -> Result<std::string> {
                          return InvalidArgument("refused {}", s);
                        })
                  .ok());
  ASSERT_TRUE(functions
                  ->Add("throw",
                        [](std::string_view) -> Result<std::string> {
                          throw std::runtime_error("out of paint");
                        })
                  .ok());
  pb::Result text = Call(functions, "reverse", "abc");
  EXPECT_TRUE(text.ok());
  EXPECT_EQ(text.text(), "cba");
  pb::Result data = Call(functions, "reverse", std::string("\x80\xff", 2));
  EXPECT_TRUE(data.ok());
  EXPECT_EQ(data.data(), std::string("\xff\x80", 2)) << "not UTF-8: data, not text";
  pb::Result refused = Call(functions, "refuse", "x");
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), "refused x");
  pb::Result thrown = Call(functions, "throw", "x");
  EXPECT_FALSE(thrown.ok());
  EXPECT_EQ(thrown.error(), "throw: exception: out of paint");
  pb::Result unknown = Call(functions, "resize", "x");
  EXPECT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error(), "this worker does not serve 'resize'");
}

TEST(CallKindTest, AWorkerWithoutFunctionsDoesNotServeCall) {
  Result<std::unique_ptr<Runner>> runner = Kinds().Find("call")->NewRunner(WorkerEnv{});
  ASSERT_TRUE(runner.ok());
  EXPECT_FALSE((*runner)->enabled());
}

}  // namespace
}  // namespace fanout::jobs
