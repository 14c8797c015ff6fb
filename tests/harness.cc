#include "tests/harness.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fanout::testing {

std::string FanoutBinary() {
  const char* bin = std::getenv("FANOUT_BIN");
  return bin != nullptr ? bin : "build/bin/fanout";
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json CommandResult::Json() const {
  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const size_t nl = text.rfind('\n');
  const std::string last = nl == std::string::npos ? text : text.substr(nl + 1);
  return nlohmann::json::parse(last, nullptr, /*allow_exceptions=*/false);
}

Background StartFanout(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  Result<client::TempDir> dir = client::TempDir::Make("fanout-run");
  EXPECT_TRUE(dir.ok()) << (dir.ok() ? "" : dir.error().message);
  client::TempDir own = dir ? std::move(*dir) : client::TempDir();
  const std::string out = own / "stdout", err = own / "stderr";
  Background bg{.dir = std::move(own),
                .process = Subprocess::Spawn({"/bin/true"}).value(),
                .out_path = out,
                .err_path = err};
  std::vector<std::string> argv = {FanoutBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess::Options io;
  io.stdout_path = bg.out_path;
  io.stderr_path = bg.err_path;
  io.env = {"NO_COLOR=1"};
  io.env.insert(io.env.end(), env.begin(), env.end());
  Result<Subprocess> p = Subprocess::Spawn(argv, io);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  if (p.ok()) bg.process = std::move(*p);
  return bg;
}

CommandResult Background::Finish(Duration timeout) {
  CommandResult r;
  std::optional<int> status = process.Wait(timeout);
  if (!status) process.Kill();
  r.status = status.value_or(-1);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

CommandResult RunFanout(const std::vector<std::string>& args, Duration timeout) {
  return StartFanout(args).Finish(timeout);
}

bool Eventually(const std::function<bool()>& condition, Duration timeout) {
  const TimePoint give_up = Now() + timeout;
  while (!condition()) {
    if (Now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

client::ClusterOptions ClusterWith(int workers) {
  client::ClusterOptions options;
  options.binary = FanoutBinary();
  options.workers = workers;
  options.log_level = "info";
  return options;
}

std::vector<pid_t> ProcessesWithEnv(const std::string& entry) {
  std::vector<pid_t> found;
  for (const auto& dir : std::filesystem::directory_iterator("/proc")) {
    const std::string name = dir.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == getpid()) continue;
    std::ifstream in(dir.path() / "environ");
    std::string var;
    while (std::getline(in, var, '\0')) {
      if (var == entry) {
        // A zombie has exited; it is only waiting to be reaped.
        std::ifstream stat(dir.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const size_t paren = text.rfind(')');
        if (paren != std::string::npos && text.size() > paren + 2 && text[paren + 2] == 'Z') break;
        found.push_back(pid);
        break;
      }
    }
  }
  return found;
}

}  // namespace fanout::testing
