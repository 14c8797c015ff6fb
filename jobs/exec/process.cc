#include "jobs/exec/process.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <utility>

namespace fanout::jobs::exec {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr TimePoint kNever = TimePoint::max();

// Readiness as both drivers report it: any event on a descriptor means
// "try it" (a pipe at its end reports POLLHUP, which zmq_poll calls an error).
constexpr short kIn = 1;
constexpr short kOut = 2;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Close(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::optional<std::string> Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

// One run of a command, from spawn to reaping. Driven by whoever calls
// OnReady and OnTime: not thread-safe, one driver at a time.
class Run {
 public:
  struct Want {
    int fd;
    short events;
  };

  Run(const Invocation& inv, Reaper* reaper, std::stop_token stop, TimePoint now);
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  bool done() const { return done_; }
  // What to wait for now, and until when.
  std::vector<Want> Wants() const;
  TimePoint NextDeadline() const { return terminating_ ? kill_at_ : deadline_; }
  void OnReady(int fd, TimePoint now);
  void OnTime(TimePoint now);
  Outcome Finish();

 private:
  void Spawn(const Invocation& inv);
  void ReadOut(TimePoint now);
  void ReadErr();
  void WriteIn();
  void Terminate(Ending::How how, TimePoint now);
  // The leader has exited: its group goes, its pipes are drained, it is reaped.
  void Reap();

  Reaper* reaper_;
  pid_t pid_ = -1;
  Fd pidfd_, out_, err_, in_, stop_fd_;
  std::string input_;
  size_t input_sent_ = 0;
  Output output_;
  Tail tail_;
  Ending ending_;
  Duration timeout_{};
  TimePoint deadline_ = kNever;
  TimePoint kill_at_ = kNever;
  bool started_ = false;
  bool terminating_ = false;
  bool done_ = false;
  int status_ = 0;
  std::optional<std::stop_callback<std::function<void()>>> on_stop_;
};

Run::Run(const Invocation& inv, Reaper* reaper, std::stop_token stop, TimePoint now)
    : reaper_(reaper), output_(inv.max_output), timeout_(inv.timeout) {
  Spawn(inv);
  if (done_) return;
  if (timeout_ > Duration::zero()) deadline_ = now + timeout_;
  if (stop.stop_possible()) {
    stop_fd_ = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    const int fd = stop_fd_.get();
    on_stop_.emplace(std::move(stop), std::function<void()>([fd] {
                       const uint64_t one = 1;
                       (void)!write(fd, &one, sizeof one);
                     }));
  }
}

Run::~Run() {
  if (pid_ > 0) {  // abandoned before it ended: nothing of it stays
    kill(-pid_, SIGKILL);
    if (reaper_ != nullptr) reaper_->Remove(pid_);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void Run::Spawn(const Invocation& inv) {
  auto fail = [&](std::string why) {
    ending_.how = Ending::kNotStarted;
    ending_.why = std::move(why);
    done_ = true;
  };
  int out[2], err[2], in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0) return fail(fmt::format("pipe: {}", std::strerror(errno)));
  Fd out_read(out[0]), out_write(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) return fail(fmt::format("pipe: {}", std::strerror(errno)));
  Fd err_read(err[0]), err_write(err[1]);
  Fd in_read, in_write;
  if (inv.input) {
    if (pipe2(in, O_CLOEXEC) != 0) return fail(fmt::format("pipe: {}", std::strerror(errno)));
    in_read = Fd(in[0]);
    in_write = Fd(in[1]);
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (inv.input) {
    posix_spawn_file_actions_adddup2(&actions, in_read.get(), 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (!inv.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, inv.cwd.c_str());

  // Its own process group (so it and its children can be killed at once),
  // no blocked signals and default handlers (the worker ignores SIGPIPE).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv, envp;
  for (const std::string& a : inv.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : inv.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, inv.program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    if (rc == ENOENT && !inv.cwd.empty() && access(inv.cwd.c_str(), F_OK) != 0) {
      return fail(fmt::format("no such directory: {} (--cwd)", inv.cwd));
    }
    if (rc == ENOENT) return fail(fmt::format("not found: {}", inv.argv[0]));
    if (rc == EACCES) return fail(fmt::format("permission denied: {}", inv.argv[0]));
    return fail(fmt::format("cannot run {}: {}", inv.argv[0], std::strerror(rc)));
  }
  pid_ = pid;
  started_ = true;
  if (reaper_ != nullptr) reaper_->Add(pid_);
  pidfd_ = Fd(static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)));
  if (!pidfd_) {
    spdlog::error("pidfd_open({}): {} (Linux 5.3 or later is needed)", pid_, std::strerror(errno));
    kill(-pid_, SIGKILL);
    Reap();
    started_ = false;
    return fail("cannot watch the command: pidfd_open failed");
  }
  out_ = std::move(out_read);
  err_ = std::move(err_read);
  SetNonBlocking(out_.get());
  SetNonBlocking(err_.get());
  if (inv.input) {
    in_ = std::move(in_write);
    SetNonBlocking(in_.get());
    input_ = *inv.input;
  }
}

std::vector<Run::Want> Run::Wants() const {
  std::vector<Want> wants;
  if (done_) return wants;
  wants.push_back({pidfd_.get(), kIn});
  if (out_) wants.push_back({out_.get(), kIn});
  if (err_) wants.push_back({err_.get(), kIn});
  if (in_) wants.push_back({in_.get(), kOut});
  if (stop_fd_) wants.push_back({stop_fd_.get(), kIn});
  return wants;
}

void Run::OnReady(int fd, TimePoint now) {
  if (done_) return;
  if (out_ && fd == out_.get()) ReadOut(now);
  if (err_ && fd == err_.get()) ReadErr();
  if (in_ && fd == in_.get()) WriteIn();
  if (stop_fd_ && fd == stop_fd_.get()) {
    // The callback may still be writing to the eventfd on the stopping
    // thread: its end (the destructor waits for it) comes before the close.
    on_stop_.reset();
    stop_fd_.Close();
    Terminate(Ending::kStopped, now);
  }
  if (fd == pidfd_.get()) Reap();
}

void Run::OnTime(TimePoint now) {
  if (done_) return;
  if (!terminating_ && now >= deadline_) {
    ending_.timeout = timeout_;
    Terminate(Ending::kTimedOut, now);
  } else if (terminating_ && now >= kill_at_) {
    kill(-pid_, SIGKILL);
    kill_at_ = kNever;
  }
}

void Run::ReadOut(TimePoint now) {
  char buf[kChunk];
  while (out_) {
    const ssize_t n = read(out_.get(), buf, sizeof buf);
    if (n > 0) {
      if (!output_.Append({buf, static_cast<size_t>(n)})) {
        ending_.cap = output_.cap();
        Terminate(Ending::kOverCap, now);
        out_.Close();  // the rest is not wanted: it gets EPIPE
      }
    } else if (n == 0 || errno != EINTR) {
      if (n == 0 || errno != EAGAIN) out_.Close();
      return;
    }
  }
}

void Run::ReadErr() {
  char buf[kChunk];
  while (err_) {
    const ssize_t n = read(err_.get(), buf, sizeof buf);
    if (n > 0) {
      tail_.Append({buf, static_cast<size_t>(n)});
    } else if (n == 0 || errno != EINTR) {
      if (n == 0 || errno != EAGAIN) err_.Close();
      return;
    }
  }
}

void Run::WriteIn() {
  while (in_ && input_sent_ < input_.size()) {
    const ssize_t n = write(in_.get(), input_.data() + input_sent_, input_.size() - input_sent_);
    if (n > 0) {
      input_sent_ += static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else if (n < 0 && errno != EINTR) {
      break;  // EPIPE: it does not read its input
    }
  }
  in_.Close();
}

void Run::Terminate(Ending::How how, TimePoint now) {
  if (terminating_) return;
  terminating_ = true;
  ending_.how = how;
  kill(-pid_, SIGTERM);
  kill(-pid_, SIGCONT);  // a stopped process must wake to die
  kill_at_ = now + kKillGrace;
}

void Run::Reap() {
  // Whatever the command left running in its group goes with it; then what
  // it wrote before exiting is read (nothing more can come).
  kill(-pid_, SIGKILL);
  if (reaper_ != nullptr) reaper_->Remove(pid_);
  if (out_) ReadOut(Now());
  if (err_) ReadErr();
  while (waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  done_ = true;
}

Outcome Run::Finish() {
  Outcome outcome;
  if (started_ && !terminating_) {
    if (WIFEXITED(status_)) {
      ending_.how = Ending::kExited;
      ending_.status = WEXITSTATUS(status_);
    } else {
      ending_.how = Ending::kSignaled;
      ending_.status = WTERMSIG(status_);
    }
  }
  outcome.ending = ending_;
  if (ending_.how == Ending::kExited || ending_.how == Ending::kSignaled) {
    outcome.output = output_.Value();
  }
  outcome.stderr_tail = tail_.Last();
  return outcome;
}

// Drives a Run from the event loop: watches what it wants, wakes it at its
// deadline, and resumes the coroutine when it is done.
class LoopDriver {
 public:
  LoopDriver(Run& run, EventLoop& loop) : run_(run), loop_(loop) {}
  bool await_ready() const noexcept { return run_.done(); }
  void await_suspend(std::coroutine_handle<> waiter) {
    waiter_ = waiter;
    Refresh();
  }
  void await_resume() const noexcept {}

 private:
  void Refresh() {
    if (run_.done()) {
      for (auto& [fd, watch] : watches_) loop_.Unwatch(watch.id);
      watches_.clear();
      if (timer_) loop_.Cancel(*timer_);
      timer_.reset();
      std::coroutine_handle<> waiter = waiter_;
      waiter.resume();  // may destroy this driver: nothing after it
      return;
    }
    std::map<int, short> wanted;
    for (const Run::Want& w : run_.Wants())
      wanted[w.fd] = w.events == kOut ? ZMQ_POLLOUT : ZMQ_POLLIN;
    for (auto it = watches_.begin(); it != watches_.end();) {
      if (!wanted.contains(it->first)) {
        loop_.Unwatch(it->second.id);
        it = watches_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [fd, events] : wanted) {
      if (watches_.contains(fd)) continue;
      const EventLoop::WatchId id = loop_.WatchFd(fd, events, [this, fd = fd](short) {
        run_.OnReady(fd, Now());
        Refresh();
      });
      watches_[fd] = {id};
    }
    const TimePoint next = run_.NextDeadline();
    if (!timer_ || timer_->first != next) {
      if (timer_) loop_.Cancel(*timer_);
      timer_.reset();
      if (next != kNever) {
        timer_ = loop_.At(next, [this] {
          timer_.reset();
          run_.OnTime(Now());
          Refresh();
        });
      }
    }
  }

  struct Watch {
    EventLoop::WatchId id;
  };
  Run& run_;
  EventLoop& loop_;
  std::coroutine_handle<> waiter_;
  std::map<int, Watch> watches_;
  std::optional<EventLoop::TimerId> timer_;
};

}  // namespace

Result<std::string> ResolveProgram(const std::string& program, const std::string& path,
                                   const std::string& cwd) {
  if (program.find('/') != std::string::npos) {
    const std::string full =
        program.starts_with('/') || cwd.empty() ? program : cwd + "/" + program;
    if (access(full.c_str(), F_OK) != 0) return InvalidArgument("not found: {}", program);
    if (!IsExecutableFile(full)) return InvalidArgument("not executable: {}", program);
    if (std::optional<std::string> canonical = Canonical(full)) return *canonical;
    return InvalidArgument("not found: {}", program);
  }
  size_t from = 0;
  while (from <= path.size()) {
    size_t colon = path.find(':', from);
    if (colon == std::string::npos) colon = path.size();
    std::string dir = path.substr(from, colon - from);
    if (dir.empty()) dir = cwd.empty() ? "." : cwd;  // an empty entry is the current directory
    const std::string candidate = dir + "/" + program;
    if (IsExecutableFile(candidate)) {
      if (std::optional<std::string> canonical = Canonical(candidate)) return *canonical;
    }
    from = colon + 1;
  }
  return InvalidArgument("not found: {}", program);
}

Outcome RunBlocking(const Invocation& invocation, Reaper* reaper, std::stop_token stop) {
  Run run(invocation, reaper, std::move(stop), Now());
  std::vector<pollfd> fds;
  while (!run.done()) {
    fds.clear();
    for (const Run::Want& w : run.Wants()) {
      fds.push_back({w.fd, static_cast<short>(w.events == kOut ? POLLOUT : POLLIN), 0});
    }
    const TimePoint next = run.NextDeadline();
    int wait = -1;
    if (next != kNever) {
      wait = static_cast<int>(
          std::clamp<int64_t>(std::chrono::ceil<milliseconds>(next - Now()).count(), 0, 3'600'000));
    }
    if (poll(fds.data(), fds.size(), wait) < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
    }
    const TimePoint now = Now();
    for (const pollfd& p : fds) {
      if (p.revents != 0) run.OnReady(p.fd, now);
    }
    run.OnTime(now);
  }
  return run.Finish();
}

co::Task<Outcome> RunAsync(const Invocation& invocation, Reaper* reaper, EventLoop& loop,
                           std::stop_token stop) {
  Run run(invocation, reaper, std::move(stop), Now());
  co_await LoopDriver(run, loop);
  co_return run.Finish();
}

}  // namespace fanout::jobs::exec
