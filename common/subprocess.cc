#include "common/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace fanout {
namespace {

// Only async-signal-safe calls between fork and exec.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, const char* in, const char* out,
                            const char* err, int report_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  auto redirect = [](const char* path, int target) {
    if (path == nullptr) return true;
    const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return fd >= 0 && dup2(fd, target) >= 0;
  };
  auto input = [](const char* path) {
    if (path == nullptr) return true;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd >= 0 && dup2(fd, STDIN_FILENO) >= 0;
  };
  if (input(in) && redirect(out, STDOUT_FILENO) && redirect(err, STDERR_FILENO)) {
    execve(argv[0], argv, envp);
  }
  const int code = errno;
  (void)!write(report_fd, &code, sizeof code);
  _exit(127);
}

std::string ReadProc(pid_t pid, const char* file) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

double StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1));
  }
  return 0;
}

}  // namespace

Result<Subprocess> Subprocess::Spawn(const std::vector<std::string>& argv, const Options& options) {
  if (argv.empty()) return InvalidArgument("no program to run");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const char* in = options.stdin_path.empty() ? nullptr : options.stdin_path.c_str();
  const char* out = options.stdout_path.empty() ? nullptr : options.stdout_path.c_str();
  const char* err = options.stderr_path.empty() ? nullptr : options.stderr_path.c_str();

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return Internal("pipe: {}", std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) {
    close(report[0]);
    close(report[1]);
    return Internal("fork: {}", std::strerror(errno));
  }
  if (pid == 0) ExecChild(args.data(), envp.data(), in, out, err, report[1]);
  close(report[1]);
  int code = 0;
  const ssize_t n = read(report[0], &code, sizeof code);  // EOF once exec succeeded
  close(report[0]);
  Subprocess child(pid);
  if (n == static_cast<ssize_t>(sizeof code)) {
    child.Wait(std::chrono::seconds(1));
    return Internal("cannot run {}: {}", argv[0], std::strerror(code));
  }
  return child;
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(other.status_) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) Kill();
    pid_ = std::exchange(other.pid_, -1);
    status_ = other.status_;
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0) Kill();
}

bool Subprocess::Reap(int options) {
  if (status_) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, options);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

bool Subprocess::Running() { return pid_ > 0 && !Reap(WNOHANG); }

void Subprocess::Signal(int sig) {
  if (Running()) kill(pid_, sig);
}

std::optional<int> Subprocess::Wait(Duration timeout) {
  const TimePoint deadline = Now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (pid_ > 0 && !Reap(WNOHANG)) {
    if (Now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  return status_;
}

int Subprocess::Kill() {
  if (pid_ <= 0) return -1;
  if (!status_) {
    kill(pid_, SIGKILL);
    Reap(0);
  }
  return status_.value_or(-1);
}

std::string SelfExecutable() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

double CpuMillis(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after ')'.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double RssMiB(pid_t pid) { return StatusKiB(pid, "VmRSS") / 1024; }
double PeakRssMiB(pid_t pid) { return StatusKiB(pid, "VmHWM") / 1024; }

std::vector<pid_t> ProcessesRunning(std::string_view marker) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    std::string cmdline = ReadProc(pid, "cmdline");  // empty for a zombie
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (pid != getpid() && cmdline.find(marker) != std::string::npos) found.push_back(pid);
  }
  return found;
}

pid_t ParentOf(pid_t pid) {
  const std::string stat = ReadProc(pid, "stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  char state;
  pid_t parent = 0;
  fields >> state >> parent;
  return parent;
}

}  // namespace fanout
