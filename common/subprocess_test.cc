#include "common/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>

namespace fanout {
namespace {

using std::chrono::seconds;

TEST(SubprocessTest, ReportsExitCode) {
  auto child = Subprocess::Spawn({"/bin/sh", "-c", "exit 3"});
  ASSERT_TRUE(child.ok()) << child.error().message;
  EXPECT_EQ(child->Wait(seconds(5)), 3);
}

TEST(SubprocessTest, MissingProgramIsAnError) {
  auto child = Subprocess::Spawn({"/nonexistent/fanout"});
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.error().message.find("No such file"), std::string::npos);
}

TEST(SubprocessTest, KilledWhenDestroyed) {
  pid_t pid;
  {
    auto child = Subprocess::Spawn({"/bin/sleep", "30"});
    ASSERT_TRUE(child.ok());
    pid = child->pid();
    EXPECT_TRUE(child->Running());
  }
  EXPECT_EQ(kill(pid, 0), -1);  // reaped: no such process
}

TEST(SubprocessTest, SignalStatusIs128PlusSignal) {
  auto child = Subprocess::Spawn({"/bin/sleep", "30"});
  ASSERT_TRUE(child.ok());
  child->Signal(SIGTERM);
  EXPECT_EQ(child->Wait(seconds(5)), 128 + SIGTERM);
}

TEST(SubprocessTest, RedirectsOutputAndAddsEnvironment) {
  const std::string path = testing::TempDir() + "/subprocess_out.txt";
  std::remove(path.c_str());
  Subprocess::Options options;
  options.env = {"FANOUT_TEST_VALUE=hello"};
  options.stdout_path = path;
  auto child = Subprocess::Spawn({"/bin/sh", "-c", "echo $FANOUT_TEST_VALUE"}, options);
  ASSERT_TRUE(child.ok());
  ASSERT_EQ(child->Wait(seconds(5)), 0);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "hello\n");
}

}  // namespace
}  // namespace fanout
