// Real commands run by the exec kind's process supervisor, blocking and on
// an event loop: values, statuses, timeouts that take the whole group,
// output caps, standard input, stop requests, and the reaper.
#include "jobs/exec/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/subprocess.h"
#include "jobs/exec/reaper.h"
#include "jobs/registry.h"

extern char** environ;

namespace fanout::jobs::exec {
namespace {

using std::chrono::seconds;

Invocation Make(std::vector<std::string> argv, Duration timeout = {}) {
  Invocation inv;
  inv.argv = std::move(argv);
  Result<std::string> program = ResolveProgram(inv.argv[0], std::getenv("PATH"), "");
  EXPECT_TRUE(program.ok()) << program.error().message;
  inv.program = program.ok() ? *program : inv.argv[0];
  for (char** e = environ; *e != nullptr; ++e) inv.env.emplace_back(*e);
  inv.timeout = timeout;
  return inv;
}

int Running(const std::string& marker) { return static_cast<int>(ProcessesRunning(marker).size()); }

// Waits (up to 3 s) until no process carries `marker`.
bool GoneSoon(const std::string& marker) {
  const TimePoint give_up = Now() + seconds(3);
  while (Running(marker) > 0 && Now() < give_up) std::this_thread::sleep_for(milliseconds(20));
  return Running(marker) == 0;
}

TEST(ProcessTest, TheValueIsStandardOutputWithoutItsLastNewline) {
  Outcome o = RunBlocking(Make({"printf", "hello %s\\n", "world"}), nullptr, {});
  EXPECT_TRUE(o.ending.ok());
  EXPECT_EQ(o.output, "hello world");
}

TEST(ProcessTest, ANonZeroStatusFailsWithTheEndOfStandardError) {
  Outcome o = RunBlocking(
      Make({"sh", "-c", "echo working; echo warming up >&2; echo boom >&2; exit 3"}), nullptr, {});
  EXPECT_FALSE(o.ending.ok());
  EXPECT_EQ(o.ending.how, Ending::kExited);
  EXPECT_EQ(o.ending.status, 3);
  EXPECT_EQ(Describe(o.ending, o.stderr_tail), "exit 3: warming up / boom");
}

TEST(ProcessTest, DeathByASignalSaysWhich) {
  Outcome o = RunBlocking(Make({"sh", "-c", "kill -SEGV $$"}), nullptr, {});
  EXPECT_EQ(o.ending.how, Ending::kSignaled);
  EXPECT_EQ(Describe(o.ending, ""), "killed by signal 11 (SIGSEGV)");
}

TEST(ProcessTest, ATimeoutKillsTheWholeProcessGroup) {
  const std::string marker = "31.0417";  // sleep's argument: how we find its children
  const TimePoint start = Now();
  Outcome o = RunBlocking(
      Make({"sh", "-c", "sleep 31.0417 & sleep 31.0417 & wait"}, milliseconds(300)), nullptr, {});
  EXPECT_EQ(o.ending.how, Ending::kTimedOut);
  EXPECT_LT(Now() - start, seconds(2));
  EXPECT_TRUE(GoneSoon(marker)) << "a child of the timed-out command is still running";
}

TEST(ProcessTest, ACommandThatIgnoresSigtermIsKilledAfterTheGrace) {
  const TimePoint start = Now();
  Outcome o = RunBlocking(
      Make({"sh", "-c", "trap '' TERM; sleep 30.0418; true"}, milliseconds(200)), nullptr, {});
  EXPECT_EQ(o.ending.how, Ending::kTimedOut);
  EXPECT_GE(Now() - start, milliseconds(200) + kKillGrace - milliseconds(50));
  EXPECT_LT(Now() - start, seconds(3));
  EXPECT_TRUE(GoneSoon("30.0418"));
}

TEST(ProcessTest, OutputPastTheCapFailsAtOnceAndMemoryStaysBounded) {
  Invocation inv = Make({"yes", "a line of output"});  // never ends by itself
  inv.max_output = 1 << 20;
  const TimePoint start = Now();
  Outcome o = RunBlocking(inv, nullptr, {});
  EXPECT_EQ(o.ending.how, Ending::kOverCap);
  EXPECT_TRUE(o.output.empty());
  EXPECT_LT(Now() - start, seconds(3));
}

TEST(ProcessTest, TheItemCanGoToStandardInputWhichIsOtherwiseEmpty) {
  Invocation with = Make({"cat"});
  with.input = "an item\n";
  EXPECT_EQ(RunBlocking(with, nullptr, {}).output, "an item");
  // Without, standard input is /dev/null: cat ends at once.
  Outcome without = RunBlocking(Make({"cat"}, seconds(5)), nullptr, {});
  EXPECT_TRUE(without.ending.ok());
  EXPECT_EQ(without.output, "");
  // A big input to a command that never reads it: no hang, no SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  Invocation ignored = Make({"true"});
  ignored.input = std::string(4 << 20, 'x');
  EXPECT_TRUE(RunBlocking(ignored, nullptr, {}).ending.ok());
}

TEST(ProcessTest, ACommandThatClosesStandardOutputIsWaitedForUntilItExits) {
  const TimePoint start = Now();
  Outcome o = RunBlocking(Make({"sh", "-c", "echo early; exec >&-; sleep 0.3"}), nullptr, {});
  EXPECT_TRUE(o.ending.ok());
  EXPECT_EQ(o.output, "early");
  EXPECT_GE(Now() - start, milliseconds(280));
}

TEST(ProcessTest, WhatACommandLeavesRunningInItsGroupGoesWithIt) {
  Outcome o = RunBlocking(Make({"sh", "-c", "(sleep 32.0419 &); echo started"}), nullptr, {});
  EXPECT_TRUE(o.ending.ok());
  EXPECT_EQ(o.output, "started");
  EXPECT_TRUE(GoneSoon("32.0419")) << "the daemon outlived its task";
}

TEST(ProcessTest, ProgramsAreFoundAsAShellFindsThem) {
  Result<std::string> sh = ResolveProgram("sh", "/nonexistent:/usr/bin:/bin", "");
  ASSERT_TRUE(sh.ok()) << sh.error().message;
  EXPECT_TRUE(sh->starts_with("/")) << *sh;
  EXPECT_EQ(ResolveProgram("convx", "/usr/bin:/bin", "").error().message, "not found: convx");
  EXPECT_EQ(ResolveProgram("./convx", "", "/tmp").error().message, "not found: ./convx");
  const std::string plain = ::testing::TempDir() + "/plain-file";
  std::ofstream(plain) << "not a program\n";
  chmod(plain.c_str(), 0644);
  EXPECT_EQ(ResolveProgram(plain, "", "").error().message, "not executable: " + plain);
}

TEST(ProcessTest, ANonexistentWorkingDirectoryIsAFailedRunNotACrash) {
  Invocation inv = Make({"pwd"});
  inv.cwd = "/no/such/dir";
  Outcome o = RunBlocking(inv, nullptr, {});
  EXPECT_EQ(o.ending.how, Ending::kNotStarted);
  EXPECT_EQ(o.ending.why, "no such directory: /no/such/dir (--cwd)");
  inv.cwd = "/tmp";
  EXPECT_EQ(RunBlocking(inv, nullptr, {}).output, "/tmp");
}

TEST(ProcessTest, AStopRequestKillsTheCommandAtOnce) {
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(200));
    stop.request_stop();
  });
  const TimePoint start = Now();
  Outcome o = RunBlocking(Make({"sleep", "30.0420"}), nullptr, stop.get_token());
  stopper.join();
  EXPECT_EQ(o.ending.how, Ending::kStopped);
  EXPECT_LT(Now() - start, seconds(2));
  EXPECT_TRUE(GoneSoon("30.0420"));
}

TEST(ProcessTest, OneLoopThreadWaitsOnManyCommandsAtOnce) {
  EventLoop loop;
  constexpr int kCommands = 50;
  int done = 0;
  std::vector<Outcome> outcomes(kCommands);
  const TimePoint start = Now();
  for (int i = 0; i < kCommands; ++i) {
    Invocation inv = Make({"sh", "-c", "sleep 0.2; echo $0", std::to_string(i)});
    co::Spawn([](EventLoop& l, Outcome& out, int& d, Invocation inv) -> co::Task<void> {
      out = co_await RunAsync(inv, nullptr, l, {});
      ++d;
    }(loop, outcomes[i], done, std::move(inv)));
  }
  while (done < kCommands && Now() - start < seconds(20)) loop.RunOnce(milliseconds(100));
  ASSERT_EQ(done, kCommands);
  EXPECT_LT(Now() - start, seconds(2)) << "the sleeps did not overlap";
  for (int i = 0; i < kCommands; ++i) {
    EXPECT_TRUE(outcomes[i].ending.ok());
    EXPECT_EQ(outcomes[i].output, std::to_string(i));
  }
}

TEST(ProcessTest, OnTheLoopTimeoutsAndCapsWorkToo) {
  EventLoop loop;
  Outcome slow, loud;
  int done = 0;
  auto run = [](EventLoop& l, Outcome& out, int& d, Invocation inv) -> co::Task<void> {
    out = co_await RunAsync(inv, nullptr, l, {});
    ++d;
  };
  co::Spawn(run(loop, slow, done, Make({"sh", "-c", "sleep 30.0421 & wait"}, milliseconds(200))));
  Invocation yes = Make({"yes"});
  yes.max_output = 100'000;
  co::Spawn(run(loop, loud, done, std::move(yes)));
  const TimePoint start = Now();
  while (done < 2 && Now() - start < seconds(10)) loop.RunOnce(milliseconds(100));
  ASSERT_EQ(done, 2);
  EXPECT_EQ(slow.ending.how, Ending::kTimedOut);
  EXPECT_EQ(loud.ending.how, Ending::kOverCap);
  EXPECT_TRUE(GoneSoon("30.0421"));
}

TEST(ReaperTest, KillsTheGroupsItHoldsWhenItsWorkerGoes) {
  Result<std::unique_ptr<Reaper>> reaper = Reaper::Start();
  ASSERT_TRUE(reaper.ok()) << reaper.error().message;
  // A command in a group of its own, with a child, as the exec kind starts them.
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execlp("sh", "sh", "-c", "sleep 33.0422 & sleep 33.0422", nullptr);
    _exit(127);
  }
  setpgid(pid, pid);
  (*reaper)->Add(pid);
  const TimePoint give_up = Now() + seconds(3);
  while (Running("33.0422") < 2 && Now() < give_up) std::this_thread::sleep_for(milliseconds(10));
  ASSERT_GE(Running("33.0422"), 2);
  const TimePoint gone = Now();
  reaper->reset();  // as if the worker died: the reaper sees the socket end
  int status;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(GoneSoon("33.0422"));
  EXPECT_LT(Now() - gone, seconds(1)) << "commands must die within a second of their worker";
}

}  // namespace
}  // namespace fanout::jobs::exec

// ---- the exec kind's runner, as a worker holds it ------------------------------

namespace fanout::jobs {
namespace {

pb::Task ExecTask(std::vector<std::string> command, std::string item, uint32_t retries = 0) {
  pb::Task task;
  task.set_job_id("0badc0de-7");
  task.set_index(3);
  task.set_attempt(1);
  task.set_model(pb::SYNC);
  for (std::string& arg : command) task.mutable_exec()->add_command(std::move(arg));
  task.mutable_exec()->set_item(std::move(item));
  task.mutable_exec()->set_retries(retries);
  return task;
}

WorkerEnv AllowExec(std::vector<std::string> programs = {}) {
  WorkerEnv env;
  env.allow_exec = true;
  env.exec_allowed = std::move(programs);
  return env;
}

pb::Result RunTask(const WorkerEnv& env, const pb::Task& task) {
  Result<std::unique_ptr<Runner>> runner = Kinds().Find("exec")->NewRunner(env);
  EXPECT_TRUE(runner.ok()) << runner.error().message;
  pb::Result result;
  (*runner)->RunBlocking(task, result, {});
  return result;
}

TEST(ExecRunnerTest, AWorkerWithoutAllowExecRefusesAndSaysHowToAllowIt) {
  Result<std::unique_ptr<Runner>> runner = Kinds().Find("exec")->NewRunner({});
  ASSERT_TRUE(runner.ok());
  EXPECT_FALSE((*runner)->enabled()) << "it must not offer exec in its Hello";
  pb::Result r = RunTask({}, ExecTask({"echo"}, "hi"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "this worker does not run commands: start it with --allow-exec");
}

TEST(ExecRunnerTest, CommandsKnowTheirJobTaskAndAttempt) {
  pb::Result r = RunTask(AllowExec(), ExecTask({"sh", "-c",
                                                "echo $FANOUT_JOB_ID $FANOUT_TASK_INDEX "
                                                "$FANOUT_ATTEMPT $0"},
                                               "an item"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.text(), "0badc0de-7 3 1 an item");
  EXPECT_EQ(r.exit_code(), 0);
}

TEST(ExecRunnerTest, RetriesRunAFailedCommandAgainWithTheNextAttempt) {
  const std::vector<std::string> flaky = {
      "sh", "-c", "test $FANOUT_ATTEMPT -ge 3 && echo ok on $FANOUT_ATTEMPT || exit 7"};
  pb::Result twice = RunTask(AllowExec(), ExecTask(flaky, "x", 2));
  ASSERT_TRUE(twice.ok()) << twice.error();
  EXPECT_EQ(twice.text(), "ok on 3");
  pb::Result once = RunTask(AllowExec(), ExecTask(flaky, "x", 1));
  EXPECT_FALSE(once.ok());
  EXPECT_EQ(once.error(), "exit 7");
  EXPECT_EQ(once.exit_code(), 7);
  // A second dispatch counts on from the first's tries.
  pb::Task again = ExecTask({"sh", "-c", "echo $FANOUT_ATTEMPT"}, "x", 1);
  again.set_attempt(2);
  EXPECT_EQ(RunTask(AllowExec(), again).text(), "3");
}

TEST(ExecRunnerTest, ExecAllowRunsOnlyThoseProgramsAndNeverOneNamedByTheItem) {
  const WorkerEnv env = AllowExec({"echo"});
  EXPECT_EQ(RunTask(env, ExecTask({"echo", "hi"}, "there")).text(), "hi there");
  pb::Result other = RunTask(env, ExecTask({"sh", "-c", "echo"}, "x"));
  EXPECT_FALSE(other.ok());
  EXPECT_EQ(other.error(), "this worker runs only echo: not sh");
  pb::Result from_item = RunTask(env, ExecTask({"{}", "hi"}, "echo"));
  EXPECT_FALSE(from_item.ok());
  EXPECT_NE(from_item.error().find("may not come from the item"), std::string::npos)
      << from_item.error();
  // An allowed program that does not exist stops the worker at start.
  Result<std::unique_ptr<Runner>> bad = Kinds().Find("exec")->NewRunner(AllowExec({"convx"}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "--exec-allow convx: not found: convx");
}

TEST(ExecRunnerTest, OutputThatIsNotTextTravelsAsBytes) {
  pb::Result r = RunTask(AllowExec(), ExecTask({"printf", "\\377\\000x"}, ""));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.data(), std::string("\xff\0x", 3));
  EXPECT_FALSE(r.has_text());
  pb::Result missing = RunTask(AllowExec(), ExecTask({"convx"}, "a.jpg"));
  EXPECT_EQ(missing.error(), "not found: convx");
  EXPECT_FALSE(missing.has_exit_code());
}

}  // namespace
}  // namespace fanout::jobs
