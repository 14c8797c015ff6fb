#include "jobs/exec/command.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace fanout::jobs::exec {
namespace {

using Args = std::vector<std::string>;

TEST(BuildArgvTest, BracesBecomeTheItemAndHashTheTaskNumber) {
  EXPECT_EQ(BuildArgv({"convert", "{}", "out-{#}.png"}, "a.jpg", 3, false),
            (Args{"convert", "a.jpg", "out-3.png"}));
  // Inside a word, and more than once.
  EXPECT_EQ(BuildArgv({"cp", "{}", "{}.bak"}, "f", 1, false), (Args{"cp", "f", "f.bak"}));
}

TEST(BuildArgvTest, WithoutBracesTheItemIsAppendedAsXargsDoes) {
  EXPECT_EQ(BuildArgv({"echo", "-n"}, "hello", 1, false), (Args{"echo", "-n", "hello"}));
  // {#} alone does not place the item.
  EXPECT_EQ(BuildArgv({"echo", "{#}"}, "x", 7, false), (Args{"echo", "7", "x"}));
}

TEST(BuildArgvTest, AnItemIsAlwaysOneArgumentAndNeverQuoted) {
  EXPECT_EQ(BuildArgv({"touch"}, "a file; rm -rf /", 1, false),
            (Args{"touch", "a file; rm -rf /"}));
  EXPECT_EQ(BuildArgv({"echo", "{}"}, "'$HOME' \"x\" `y`", 1, false),
            (Args{"echo", "'$HOME' \"x\" `y`"}));
  // An item holding "{#}" stays as it is.
  EXPECT_EQ(BuildArgv({"echo", "{}"}, "{#}", 4, false), (Args{"echo", "{#}"}));
}

TEST(BuildArgvTest, OnStandardInputTheItemIsNotAnArgument) {
  EXPECT_EQ(BuildArgv({"wc", "-c"}, "abc", 1, true), (Args{"wc", "-c"}));
  EXPECT_EQ(BuildArgv({"tee", "{}"}, "abc", 1, true), (Args{"tee", "{}"}));
}

TEST(BuildArgvTest, KnowsWhenTheProgramWouldComeFromTheItem) {
  EXPECT_TRUE(ProgramFromItem({"{}", "x"}));
  EXPECT_TRUE(ProgramFromItem({"/usr/bin/{}"}));
  EXPECT_FALSE(ProgramFromItem({"echo", "{}"}));
  EXPECT_FALSE(ProgramFromItem({"echo"}));
}

TEST(CheckTest, RefusesWhatCannotBeAnArgument) {
  EXPECT_FALSE(CheckCommand({}).ok());
  EXPECT_NE(CheckCommand({""}).error().message.find("no command"), std::string::npos);
  EXPECT_NE(CheckCommand({"echo", std::string("a\0b", 3)}).error().message.find("NUL"),
            std::string::npos);
  EXPECT_TRUE(CheckCommand({"echo", "{}"}).ok());
  EXPECT_NE(CheckItem(std::string("a\0b", 3), 5).error().message, "");
  EXPECT_EQ(CheckItem(std::string("a\0b", 3), 5).error().message,
            "item 5 has a NUL byte: items are lines of text");
  EXPECT_NE(CheckItem("caf\xe9", 2).error().message.find("not UTF-8"), std::string::npos);
  EXPECT_NE(CheckItem(std::string(200'000, 'x'), 1).error().message.find("at most"),
            std::string::npos);
  EXPECT_TRUE(CheckItem("a b  c", 1).ok());
  EXPECT_TRUE(CheckEnv("A=1").ok());
  EXPECT_TRUE(CheckEnv("EMPTY=").ok());
  EXPECT_FALSE(CheckEnv("=1").ok());
  EXPECT_FALSE(CheckEnv("NOEQUALS").ok());
}

TEST(ShellQuoteTest, QuotesOnlyWhatAShellWouldSplit) {
  EXPECT_EQ(ShellQuote({"convert", "a b.jpg", "out.png"}), "convert 'a b.jpg' out.png");
  EXPECT_EQ(ShellQuote({"echo", "it's"}), "echo 'it'\\''s'");
  EXPECT_EQ(ShellQuote({"echo", ""}), "echo ''");
}

TEST(OutputTest, KeepsUpToTheCapThenFails) {
  Output out(10);
  EXPECT_TRUE(out.Append("hello\n"));
  EXPECT_EQ(out.Value(), "hello");
  EXPECT_TRUE(out.Append("1234"));  // exactly 10
  EXPECT_FALSE(out.over());
  EXPECT_FALSE(out.Append("x"));
  EXPECT_TRUE(out.over());
  EXPECT_FALSE(out.Append("more"));
  Output two(100);
  two.Append("a\n\n");
  EXPECT_EQ(two.Value(), "a\n") << "one trailing newline removed, not all";
}

TEST(TailTest, KeepsTheLastLinesOfStandardError) {
  Tail tail;
  tail.Append("warming up\nline two\n");
  tail.Append("boom\n\n");
  EXPECT_EQ(tail.Last(1), "boom");
  EXPECT_EQ(tail.Last(2), "line two / boom");
  // A flood keeps only its end, bounded.
  Tail flood;
  for (int i = 0; i < 10'000; ++i) flood.Append("noise noise noise noise\n");
  flood.Append("the real error\n");
  EXPECT_EQ(flood.Last(1), "the real error");
  EXPECT_LE(flood.Last(3, 40).size(), 40u + 3);
}

Ending Ended(Ending::How how, int status = 0) {
  Ending e;
  e.how = how;
  e.status = status;
  return e;
}

TEST(DescribeTest, SaysHowARunEnded) {
  EXPECT_EQ(Describe(Ended(Ending::kExited, 3), "boom"), "exit 3: boom");
  EXPECT_EQ(Describe(Ended(Ending::kExited, 1), ""), "exit 1");
  EXPECT_EQ(Describe(Ended(Ending::kSignaled, SIGKILL), ""), "killed by signal 9 (SIGKILL)");
  Ending timed_out = Ended(Ending::kTimedOut);
  timed_out.timeout = milliseconds(2000);
  EXPECT_EQ(Describe(timed_out, ""),
            "timed out after 2.0 s (--timeout-ms): its process group was killed");
  Ending over = Ended(Ending::kOverCap);
  over.cap = 1 << 20;
  EXPECT_EQ(Describe(over, ""),
            "output over the 1.0 MiB cap (--max-output-bytes): its process group was killed");
  Ending not_started = Ended(Ending::kNotStarted);
  not_started.why = "not found: convx";
  EXPECT_EQ(Describe(not_started, ""), "not found: convx");
}

}  // namespace
}  // namespace fanout::jobs::exec
