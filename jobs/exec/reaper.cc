#include "jobs/exec/reaper.h"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

namespace fanout::jobs::exec {
namespace {

constexpr size_t kMaxGroups = 1 << 16;

struct Message {
  int32_t op;  // +1 add, -1 remove
  int32_t pgid;
};

// The reaper's whole life, in the forked child: only async-signal-safe calls.
[[noreturn]] void ReaperMain(int fd, pid_t* groups) {
  setpgid(0, 0);  // out of the worker's group: a Ctrl-C there does not reach it
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) signal(sig, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  prctl(PR_SET_NAME, "fanout-reaper", 0, 0, 0);
  // Nothing of the worker's but our end of the socket: in particular not its
  // end, whose closing is how we learn that it died.
  if (fd > 0) close_range(0, static_cast<unsigned>(fd) - 1, 0);
  close_range(static_cast<unsigned>(fd) + 1, UINT_MAX, 0);
  size_t count = 0;
  while (true) {
    Message m;
    const ssize_t n = recv(fd, &m, sizeof m, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof m)) break;  // the worker is gone
    if (m.op > 0 && count < kMaxGroups) {
      groups[count++] = m.pgid;
    } else if (m.op < 0) {
      for (size_t i = 0; i < count; ++i) {
        if (groups[i] == m.pgid) {
          groups[i] = groups[--count];
          break;
        }
      }
    }
  }
  for (size_t i = 0; i < count; ++i) {
    kill(-groups[i], SIGTERM);
    kill(-groups[i], SIGCONT);
  }
  if (count > 0) {
    const timespec grace{0, 300'000'000};
    nanosleep(&grace, nullptr);
    for (size_t i = 0; i < count; ++i) kill(-groups[i], SIGKILL);
  }
  _exit(0);
}

}  // namespace

Result<std::unique_ptr<Reaper>> Reaper::Start() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return Internal("cannot start the command reaper: socketpair: {}", std::strerror(errno));
  }
  std::vector<pid_t> groups(kMaxGroups);  // the child's table, allocated before the fork
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Internal("cannot start the command reaper: fork: {}", std::strerror(errno));
  }
  if (pid == 0) ReaperMain(fds[1], groups.data());
  close(fds[1]);
  spdlog::debug("command reaper started (pid {})", pid);
  return std::unique_ptr<Reaper>(new Reaper(fds[0], pid));
}

Reaper::~Reaper() {
  close(fd_);
  // It exits at once when it holds no group; reap it so no zombie is left.
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

void Reaper::Say(int op, pid_t pgid) {
  const Message m{op, static_cast<int32_t>(pgid)};
  while (send(fd_, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

void Reaper::Add(pid_t pgid) { Say(+1, pgid); }
void Reaper::Remove(pid_t pgid) { Say(-1, pgid); }

}  // namespace fanout::jobs::exec
