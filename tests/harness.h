// Helpers for tests that start real fanout processes.
//
// The binary comes from $FANOUT_BIN (set by ctest). Every process a test
// starts is a Subprocess or belongs to a LocalCluster, so it is killed when
// the test ends, pass or fail.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/local_cluster.h"
#include "common/clock.h"

namespace fanout::testing {

std::string FanoutBinary();

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

struct CommandResult {
  int status = -1;  // exit code, or 128 + signal; -1 if it timed out (and was killed)
  std::string out;
  std::string err;
  // The last line of stdout parsed as JSON (the --json contract).
  nlohmann::json Json() const;
};

// Runs `fanout args...` to completion (killed after `timeout`).
CommandResult RunFanout(const std::vector<std::string>& args,
                        Duration timeout = std::chrono::seconds(60));

// Starts `fanout args...` in the background with stdout/stderr in files,
// in a directory of their own that goes when this does.
struct Background {
  client::TempDir dir;  // first: it goes after the process
  Subprocess process;
  std::string out_path;
  std::string err_path;
  CommandResult Finish(Duration timeout = std::chrono::seconds(60));
};
Background StartFanout(const std::vector<std::string>& args,
                       const std::vector<std::string>& env = {});

// Processes (other than this one) whose environment holds `entry`
// ("NAME=value"): how a test finds everything a command started, children
// and grandchildren, to check that nothing was left behind.
std::vector<pid_t> ProcessesWithEnv(const std::string& entry);

client::ClusterOptions ClusterWith(int workers);

// Waits for `condition` (checked every 20 ms) up to `timeout`; whether it held.
bool Eventually(const std::function<bool()>& condition,
                Duration timeout = std::chrono::seconds(10));

std::string ReadFile(const std::string& path);

}  // namespace fanout::testing
