#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "cli/printer.h"
#include "client/job_client.h"
#include "client/report.h"
#include "client/timeline.h"
#include "common/log.h"
#include "common/signals.h"

namespace fanout::cli {
namespace {

struct SubmitFlags {
  std::string kind;
  std::string coordinator = "tcp://127.0.0.1:5556";
  std::string model = "sync";
  uint32_t count = 20;
  uint32_t concurrency = 0;
  uint32_t workers = 0;
  uint32_t max_attempts = 0;
  uint32_t task_timeout_ms = 0;
  int connect_timeout_ms = 3000;
  bool json = false;
  bool quiet = false;
  std::vector<std::string> timelines;
  // math and web
  double start = 1;
  // math
  int64_t iterations = 2'000'000;
  // web
  std::string url_template = "https://pokemondb.net/pokedex/{n}";
  std::string urls_file;
  uint32_t timeout_ms = 10'000;
  uint32_t retries = 2;
  uint64_t max_body_bytes = 8 << 20;
  bool count_given = false;
  // bank
  uint32_t accounts = 5;
  int64_t initial = 1000;
  int64_t amount_max = 100;
  uint64_t seed = 1;
  std::string mode = "atomic";
  uint32_t verify_ms = 100;
  uint32_t gap_us = 100;
};

// One URL a line; blank lines and lines starting with # are skipped.
Result<std::vector<std::string>> ReadUrls(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) return InvalidArgument("cannot read {}: {}", path, std::strerror(errno));
    in = &file;
  }
  std::vector<std::string> urls;
  std::string line;
  while (std::getline(*in, line)) {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const size_t last = line.find_last_not_of(" \t\r");
    urls.push_back(line.substr(first, last - first + 1));
  }
  if (urls.empty()) return InvalidArgument("no URLs in {}", path == "-" ? "stdin" : path);
  return urls;
}

Result<pb::JobSpec> BuildSpec(const SubmitFlags& f) {
  pb::JobSpec spec;
  spec.set_model(*ParseModel(f.model));
  spec.set_count(f.count);
  spec.set_concurrency(f.concurrency);
  spec.set_max_workers(f.workers);
  spec.set_max_attempts(f.max_attempts);
  spec.set_task_timeout_ms(f.task_timeout_ms);
  if (f.kind == "math") {
    spec.mutable_math()->set_start(f.start);
    spec.mutable_math()->set_iterations(static_cast<uint64_t>(f.iterations));
  } else if (f.kind == "bank") {
    pb::BankJob* bank = spec.mutable_bank();
    bank->set_accounts(f.accounts);
    bank->set_initial(f.initial);
    bank->set_amount_max(f.amount_max);
    bank->set_seed(f.seed);
    bank->set_mode(*ParseMode(f.mode));
    bank->set_verify_ms(f.verify_ms);
    bank->set_gap_us(f.gap_us);
  } else if (f.kind == "web") {
    pb::WebJob* web = spec.mutable_web();
    if (!f.urls_file.empty()) {
      Result<std::vector<std::string>> urls = ReadUrls(f.urls_file);
      if (!urls) return urls.error();
      if (f.count_given && f.count != urls->size()) {
        return InvalidArgument("--count {} but {} URLs in {}", f.count, urls->size(), f.urls_file);
      }
      for (std::string& url : *urls) web->add_urls(std::move(url));
      spec.set_count(static_cast<uint32_t>(web->urls_size()));
    } else {
      if (f.start != std::floor(f.start)) {
        return InvalidArgument("--start must be a whole page number for web jobs");
      }
      web->set_url_template(f.url_template);
      web->set_start(static_cast<int64_t>(f.start));
    }
    web->set_timeout_ms(f.timeout_ms);
    web->set_retries(f.retries);
    web->set_max_body_bytes(f.max_body_bytes);
  }
  return spec;
}

int RunSubmit(const SubmitFlags& flags, const GlobalFlags& global) {
  Result<SignalWatch> signals = SignalWatch::Block({SIGINT, SIGTERM});
  if (!signals) return kExitFailed;
  if (Status s = InitLogging("submit", global.log_level); !s) {
    fmt::print(stderr, "fanout submit: {}\n", s.error().message);
    return kExitUsage;
  }
  // With --json, stdout carries only the JSON; people read stderr.
  std::FILE* human = flags.json ? stderr : stdout;
  constexpr uint32_t kPerTaskLimit = 1000;
  LivePrinter printer({.out = human,
                       .per_task = !flags.quiet && flags.count <= kPerTaskLimit,
                       .progress = !flags.quiet && isatty(fileno(stderr)) ? stderr : nullptr});
  client::JobClient client(
      {.endpoint = flags.coordinator, .connect_timeout = milliseconds(flags.connect_timeout_ms)});
  Result<pb::JobSpec> spec = BuildSpec(flags);
  if (!spec) {
    fmt::print(stderr, "fanout submit: {}\n", spec.error().message);
    return kExitUsage;
  }
  Result<client::JobReport> report = client.Run(*spec, printer, signals->fd());
  if (!report) {
    fmt::print(stderr, "fanout submit: {}\n", report.error().message);
    switch (report.error().code) {
      case Error::Code::kUnavailable:
        return kExitUnreachable;
      case Error::Code::kInvalidArgument:
        return kExitUsage;
      default:
        return kExitFailed;
    }
  }
  if (!flags.quiet) printer.PrintSummary(*report);
  for (const std::string& path : flags.timelines) {
    const std::string title = fmt::format("{} under {}, job {}", KindName(report->spec),
                                          ModelName(report->spec.model()), report->job_id);
    if (Status s = client::WriteTimeline(*report, path, title); !s) {
      fmt::print(stderr, "fanout submit: {}\n", s.error().message);
    }
  }
  if (flags.json) {
    fmt::print(stdout, "{}\n", client::ReportJson(*report).dump());
    std::fflush(stdout);
  }
  const pb::JobDone& done = report->done;
  if (done.reason() == "cancelled by the client") return kExitInterrupted;
  return done.ok() == done.tasks() ? kExitOk : kExitFailed;
}

}  // namespace

Command AddSubmit(CLI::App& app, const GlobalFlags& global) {
  CLI::App* cmd = app.add_subcommand(
      "submit", "Submit a job, print its live log and results; exit 0 if every task succeeded");
  auto f = std::make_shared<SubmitFlags>();
  cmd->add_option("kind", f->kind, "the job: math, web or bank")
      ->required()
      ->check(CLI::IsMember({"math", "web", "bank"}));
  cmd->add_option("--coordinator", f->coordinator, "the coordinator's clients endpoint")
      ->envname("FANOUT_SUBMIT_TO")
      ->capture_default_str();
  cmd->add_option("--model", f->model, "how each worker runs tasks: sync, threads or async")
      ->check(CLI::IsMember({"sync", "threads", "async"}))
      ->capture_default_str();
  CLI::Option* count = cmd->add_option("--count", f->count, "number of tasks")
                           ->check(CLI::PositiveNumber)
                           ->capture_default_str();
  cmd->add_option("--concurrency", f->concurrency,
                  "tasks in flight per worker for threads and async (0: worker's default)")
      ->capture_default_str();
  cmd->add_option("--workers", f->workers, "use at most this many workers (0: all)")
      ->capture_default_str();
  cmd->add_option("--max-attempts", f->max_attempts,
                  "runs of a task on dying or stuck workers before it fails (0: coordinator's "
                  "default)")
      ->capture_default_str();
  cmd->add_option("--task-timeout-ms", f->task_timeout_ms,
                  "a task running longer is run again elsewhere (0: coordinator's default)")
      ->capture_default_str();
  cmd->add_option("--connect-timeout-ms", f->connect_timeout_ms,
                  "give up (exit 3) if the coordinator does not answer in this time")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "print one JSON summary on the last line of stdout");
  cmd->add_flag("-q,--quiet", f->quiet, "no live log, no table");
  cmd->add_option("--timeline", f->timelines,
                  "draw the job: FILE.svg (a picture) or FILE.json (a Chrome trace); repeatable");
  cmd->add_option("--start", f->start,
                  "math: starting number of task 1; web: its page number (task i: start + i - 1)")
      ->capture_default_str();
  CLI::Option_group* math = cmd->add_option_group("math", "math jobs");
  math->add_option("--iterations", f->iterations, "loop iterations per task")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  CLI::Option_group* web = cmd->add_option_group("web", "web jobs: the value is each page's <h1>");
  CLI::Option* url_template =
      web->add_option("--url-template", f->url_template, "page URL; {n} is the page number")
          ->capture_default_str();
  web->add_option("--urls-file", f->urls_file,
                  "fetch the URLs in FILE instead (one a line; - is stdin)")
      ->excludes(url_template);
  web->add_option("--timeout-ms", f->timeout_ms, "per try of a page, redirects included")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  web->add_option("--retries", f->retries, "more tries after a 5xx, a 429 or a network error")
      ->check(CLI::Range(0, 20))
      ->capture_default_str();
  web->add_option("--max-body-bytes", f->max_body_bytes, "a bigger page is a failed task")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI::Option_group* bank =
      cmd->add_option_group("bank", "bank jobs: transfers between a fresh book of accounts");
  bank->add_option("--accounts", f->accounts, "accounts bank_1 ... bank_N")
      ->check(CLI::Range(2, 10'000))
      ->capture_default_str();
  bank->add_option("--initial", f->initial, "each account's opening balance")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  bank->add_option("--amount-max", f->amount_max, "transfers move 1 ... this much")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bank->add_option("--seed", f->seed, "which transfers (same seed, same transfers)")
      ->capture_default_str();
  bank->add_option("--mode", f->mode, "unsafe (loses money), locked or atomic")
      ->check(CLI::IsMember({"unsafe", "locked", "atomic"}))
      ->capture_default_str();
  bank->add_option("--verify-ms", f->verify_ms, "simulated user check before each transfer")
      ->check(CLI::Range(0, 60'000))
      ->capture_default_str();
  bank->add_option("--gap-us", f->gap_us, "pause between reading and writing a balance")
      ->check(CLI::Range(0, 1'000'000))
      ->capture_default_str();
  return {cmd, [f, count, &global] {
            f->count_given = count->count() > 0;
            return RunSubmit(*f, global);
          }};
}

}  // namespace fanout::cli
