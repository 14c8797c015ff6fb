#include "jobs/exec/exec.h"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <set>

#include "common/term.h"
#include "common/text.h"
#include "jobs/exec/command.h"
#include "jobs/exec/process.h"
#include "jobs/exec/reaper.h"
#include "jobs/flags.h"

extern char** environ;

namespace fanout::jobs {
namespace {

using exec::Ending;

class ExecFlags final : public SubmitFlags {
 public:
  explicit ExecFlags(CLI::App& cmd) : items_(cmd) {
    cmd.add_option("--timeout-ms", timeout_ms_,
                   "kill a try's process group after this long (0: no limit)")
        ->check(CLI::Range(uint32_t{0}, exec::kMaxTimeoutMs))
        ->capture_default_str();
    cmd.add_option("--retries", retries_,
                   "run a failed command again up to this many times (commands are not "
                   "assumed idempotent)")
        ->check(CLI::Range(uint32_t{0}, exec::kMaxRetries))
        ->capture_default_str();
    cmd.add_option("--max-output-bytes", max_output_bytes_,
                   "a command writing more to standard output fails")
        ->check(CLI::Range(uint64_t{1}, exec::kMaxOutputBytes))
        ->capture_default_str();
    cmd.add_flag("--stdin", stdin_, "give the item on standard input instead of as an argument");
    cmd.add_option("--env", env_, "NAME=value in the command's environment (repeatable)")
        ->allow_extra_args(false);
    cmd.add_option("--cwd", cwd_, "the command's working directory on the worker");
    cmd.add_option("command", command_,
                   "after --: the program and its arguments; {} is the item, {#} the task "
                   "number (no {}: the item is appended)");
  }

  Status Fill(pb::JobSpec& spec) const override {
    if (Status s = exec::CheckCommand(command_); !s) return s;
    pb::ExecJob* job = spec.mutable_exec();
    for (const std::string& arg : command_) job->add_command(arg);
    if (Status s = items_.Collect(job->mutable_items(), job->ByteSizeLong(), exec::CheckItem); !s) {
      return s;
    }
    for (const std::string& entry : env_) {
      if (Status s = exec::CheckEnv(entry); !s) return s;
      job->add_env(entry);
    }
    spec.set_count(static_cast<uint32_t>(job->items_size()));
    job->set_item_on_stdin(stdin_);
    job->set_cwd(cwd_);
    job->set_timeout_ms(timeout_ms_);
    job->set_retries(retries_);
    job->set_max_output_bytes(max_output_bytes_);
    return {};
  }

 private:
  ItemFlags items_;
  std::vector<std::string> command_;
  uint32_t timeout_ms_ = 0;
  uint32_t retries_ = 0;
  uint64_t max_output_bytes_ = exec::kDefaultMaxOutputBytes;
  bool stdin_ = false;
  std::vector<std::string> env_;
  std::string cwd_;
};

std::vector<std::string> Command(const google::protobuf::RepeatedPtrField<std::string>& command) {
  return {command.begin(), command.end()};
}

// Replaces NAME's entry in `env`, or adds it.
void SetEnv(std::vector<std::string>& env, std::string_view entry) {
  const std::string_view name = entry.substr(0, entry.find('=') + 1);
  for (std::string& e : env) {
    if (std::string_view(e).starts_with(name)) {
      e = entry;
      return;
    }
  }
  env.emplace_back(entry);
}

std::string EnvValue(const std::vector<std::string>& env, std::string_view name) {
  for (const std::string& e : env) {
    if (e.size() > name.size() && e[name.size()] == '=' && std::string_view(e).starts_with(name)) {
      return e.substr(name.size() + 1);
    }
  }
  return "";
}

class ExecRunner final : public Runner {
 public:
  ExecRunner(const WorkerEnv& env, std::set<std::string> allowed,
             std::unique_ptr<exec::Reaper> reaper)
      : enabled_(env.allow_exec), allowed_(std::move(allowed)), reaper_(std::move(reaper)) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) base_env_.emplace_back(*e);
    for (const std::string& program : env.exec_allowed) allowed_names_ += " " + program;
  }

  bool enabled() const override { return enabled_; }

  void RunBlocking(const pb::Task& task, pb::Result& result, std::stop_token stop) override {
    Result<exec::Invocation> inv = Prepare(task);
    if (!inv) return Refuse(inv.error(), result);
    exec::Outcome outcome;
    for (uint32_t attempt = 1; Retry(task, attempt, outcome, stop); ++attempt) {
      SetAttempt(task, attempt, *inv);
      outcome = exec::RunBlocking(*inv, reaper_.get(), stop);
    }
    Fill(outcome, result);
  }

  co::Task<void> RunAsync(const pb::Task& task, pb::Result& result, AsyncEnv& env,
                          std::stop_token stop) override {
    Result<exec::Invocation> inv = Prepare(task);
    if (!inv) {
      Refuse(inv.error(), result);
      co_return;
    }
    exec::Outcome outcome;
    for (uint32_t attempt = 1; Retry(task, attempt, outcome, stop); ++attempt) {
      SetAttempt(task, attempt, *inv);
      outcome = co_await exec::RunAsync(*inv, reaper_.get(), env.loop(), stop);
    }
    Fill(outcome, result);
  }

 private:
  // Whether try `attempt` should run: the first always, later ones after a
  // failure, within --retries, unless the task is being stopped.
  static bool Retry(const pb::Task& task, uint32_t attempt, const exec::Outcome& last,
                    const std::stop_token& stop) {
    if (attempt == 1) return true;
    if (last.ending.ok() || stop.stop_requested()) return false;
    if (last.ending.how == Ending::kNotStarted || attempt > task.exec().retries() + 1) return false;
    spdlog::info("task {}/{}: try {} of {} failed ({}); running it again", task.job_id(),
                 task.index(), attempt - 1, task.exec().retries() + 1,
                 exec::Describe(last.ending, ""));
    return true;
  }

  // FANOUT_ATTEMPT counts every run of the task's command: tries here and
  // earlier dispatches (each of which had retries + 1 tries).
  static void SetAttempt(const pb::Task& task, uint32_t attempt, exec::Invocation& inv) {
    const uint32_t runs =
        (std::max(task.attempt(), 1u) - 1) * (task.exec().retries() + 1) + attempt;
    SetEnv(inv.env, fmt::format("FANOUT_ATTEMPT={}", runs));
  }

  Result<exec::Invocation> Prepare(const pb::Task& task) const {
    if (!enabled_) {
      return InvalidArgument("this worker does not run commands: start it with --allow-exec");
    }
    const pb::Exec& e = task.exec();
    const std::vector<std::string> command = Command(e.command());
    if (Status s = exec::CheckCommand(command); !s) return s.error();
    if (Status s = exec::CheckItem(e.item(), task.index()); !s) return s.error();
    if (!allowed_.empty() && exec::ProgramFromItem(command)) {
      return InvalidArgument(
          "this worker runs only{}: the program may not come from the item ({{}} in '{}')",
          allowed_names_, command[0]);
    }
    exec::Invocation inv;
    inv.argv = exec::BuildArgv(command, e.item(), task.index(), e.item_on_stdin());
    if (e.item_on_stdin()) inv.input = e.item() + "\n";
    inv.env = base_env_;
    SetEnv(inv.env, "FANOUT_JOB_ID=" + task.job_id());
    SetEnv(inv.env, fmt::format("FANOUT_TASK_INDEX={}", task.index()));
    for (const std::string& entry : e.env()) {
      if (Status s = exec::CheckEnv(entry); !s) return s.error();
      SetEnv(inv.env, entry);
    }
    inv.cwd = e.cwd();
    inv.timeout = milliseconds(e.timeout_ms());
    inv.max_output = e.max_output_bytes() > 0 ? e.max_output_bytes() : exec::kDefaultMaxOutputBytes;
    Result<std::string> program =
        exec::ResolveProgram(inv.argv[0], EnvValue(inv.env, "PATH"), inv.cwd);
    if (!program) return program.error();
    if (!allowed_.empty() && !allowed_.contains(*program)) {
      return InvalidArgument("this worker runs only{}: not {}", allowed_names_, inv.argv[0]);
    }
    inv.program = std::move(*program);
    return inv;
  }

  static void Refuse(const Error& error, pb::Result& result) {
    result.set_ok(false);
    result.set_error(ToUtf8(error.message));
  }

  static void Fill(const exec::Outcome& outcome, pb::Result& result) {
    const Ending& ending = outcome.ending;
    if (ending.how == Ending::kExited) result.set_exit_code(ending.status);
    if (ending.how == Ending::kSignaled) result.set_exit_code(-ending.status);
    result.set_ok(ending.ok());
    if (!ending.ok()) {
      result.set_error(ToUtf8(exec::Describe(ending, outcome.stderr_tail)));
    } else if (IsUtf8(outcome.output)) {
      result.set_text(outcome.output);
    } else {
      result.set_data(outcome.output);
    }
  }

  bool enabled_;
  std::set<std::string> allowed_;  // canonical paths; empty: any program
  std::string allowed_names_;      // " sleep echo", for messages
  std::unique_ptr<exec::Reaper> reaper_;
  std::vector<std::string> base_env_;
};

std::string Label(const pb::JobSpec& spec, uint32_t index) {
  const pb::ExecJob& job = spec.exec();
  const std::string& item = job.items(static_cast<int>(index - 1));
  const std::vector<std::string> argv =
      exec::BuildArgv(Command(job.command()), item, index, job.item_on_stdin());
  std::string line = exec::ShellQuote(argv);
  if (job.item_on_stdin()) line += " < " + exec::ShellQuote({item});
  return Ellipsize(line, 100);
}

}  // namespace

std::unique_ptr<SubmitFlags> ExecKind::AddSubmitFlags(CLI::App& cmd) const {
  return std::make_unique<ExecFlags>(cmd);
}

Status ExecKind::Validate(const pb::JobSpec& spec) const {
  const pb::ExecJob& job = spec.exec();
  if (Status s = exec::CheckCommand(Command(job.command())); !s) return s;
  if (static_cast<uint32_t>(job.items_size()) != spec.count()) {
    return InvalidArgument("count ({}) must equal the number of items ({})", spec.count(),
                           job.items_size());
  }
  for (int i = 0; i < job.items_size(); ++i) {
    if (Status s = exec::CheckItem(job.items(i), static_cast<size_t>(i) + 1); !s) return s;
  }
  if (job.env_size() > static_cast<int>(exec::kMaxEnvEntries)) {
    return InvalidArgument("at most {} --env entries", exec::kMaxEnvEntries);
  }
  for (const std::string& entry : job.env()) {
    if (Status s = exec::CheckEnv(entry); !s) return s;
  }
  if (job.timeout_ms() > exec::kMaxTimeoutMs) {
    return InvalidArgument("timeout must be at most {} ms (got {})", exec::kMaxTimeoutMs,
                           job.timeout_ms());
  }
  if (job.retries() > exec::kMaxRetries) {
    return InvalidArgument("retries must be at most {} (got {})", exec::kMaxRetries, job.retries());
  }
  if (job.max_output_bytes() > exec::kMaxOutputBytes) {
    return InvalidArgument("max output must be at most {} bytes", exec::kMaxOutputBytes);
  }
  if (!IsUtf8(job.cwd()) || job.cwd().find('\0') != std::string::npos) {
    return InvalidArgument("the working directory is not text");
  }
  return {};
}

void ExecKind::FillTask(const pb::JobSpec& spec, uint32_t index, const CoordinatorEnv&,
                        pb::Task* task) const {
  const pb::ExecJob& job = spec.exec();
  pb::Exec* e = task->mutable_exec();
  *e->mutable_command() = job.command();
  e->set_item(job.items(static_cast<int>(index - 1)));
  e->set_item_on_stdin(job.item_on_stdin());
  *e->mutable_env() = job.env();
  e->set_cwd(job.cwd());
  e->set_timeout_ms(job.timeout_ms());
  e->set_retries(job.retries());
  e->set_max_output_bytes(job.max_output_bytes());
}

// A command is not assumed idempotent, so a slow one is not run twice at
// once: with --timeout-ms the coordinator waits out every try (and a margin)
// before it runs the task elsewhere; without, it waits as long as the
// worker is alive.
std::optional<Duration> ExecKind::TaskDeadline(const pb::JobSpec& spec) const {
  const pb::ExecJob& job = spec.exec();
  if (job.timeout_ms() == 0) return Duration::zero();
  return (job.retries() + 1) * (milliseconds(job.timeout_ms()) + exec::kKillGrace) +
         std::chrono::seconds(10);
}

Result<std::unique_ptr<Runner>> ExecKind::NewRunner(const WorkerEnv& env) const {
  std::set<std::string> allowed;
  std::unique_ptr<exec::Reaper> reaper;
  if (env.allow_exec) {
    const char* path = std::getenv("PATH");
    for (const std::string& program : env.exec_allowed) {
      Result<std::string> resolved = exec::ResolveProgram(program, path ? path : "", "");
      if (!resolved)
        return InvalidArgument("--exec-allow {}: {}", program, resolved.error().message);
      allowed.insert(*resolved);
    }
    // Writing to a command's standard input after it exited must fail
    // with EPIPE, not kill the worker.
    signal(SIGPIPE, SIG_IGN);
    Result<std::unique_ptr<exec::Reaper>> started = exec::Reaper::Start();
    if (!started) return started.error();
    reaper = std::move(*started);
  }
  return std::unique_ptr<Runner>(
      std::make_unique<ExecRunner>(env, std::move(allowed), std::move(reaper)));
}

std::string ExecKind::StartLine(const pb::JobSpec& spec, uint32_t index) const {
  return fmt::format("Running {:02}: {}...", index, Label(spec, index));
}

std::string ExecKind::DoneLine(const pb::JobSpec&, uint32_t index, const pb::Result& r) const {
  if (!r.ok()) return fmt::format("Failed {:02}: {}", index, r.error());
  return fmt::format("Done {:02} in {}", index,
                     HumanDuration(static_cast<double>(r.finished_us() - r.started_us()) / 1000));
}

void ExecKind::AddJsonFields(const pb::Result& result, nlohmann::json& row) const {
  row["exit_code"] = result.has_exit_code() ? nlohmann::json(result.exit_code()) : nullptr;
}

}  // namespace fanout::jobs
