#include "client/job_client.h"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdlib>

#include "common/log.h"
#include "common/transport.h"

namespace fanout::client {
namespace {

// The coordinator's answer that this is not its clients endpoint (or not a
// coordinator at all), as an error for the caller.
Error WrongService(const std::string& endpoint, const std::string& says) {
  return InvalidArgument("{} is not a coordinator's clients endpoint: {}", endpoint, says);
}

}  // namespace

pb::JobSpec MathJob(pb::Model model, uint32_t count, uint64_t iterations) {
  pb::JobSpec spec;
  spec.set_model(model);
  spec.set_count(count);
  spec.mutable_math()->set_start(1);
  spec.mutable_math()->set_iterations(iterations);
  return spec;
}

pb::Origin ThisProcess() {
  pb::Origin origin;
  origin.set_host(HostName());
  origin.set_pid(getpid());
  const char* user = std::getenv("USER");
  if (user == nullptr || *user == '\0') {
    if (const passwd* pw = getpwuid(getuid())) user = pw->pw_name;
  }
  if (user != nullptr) origin.set_user(user);
  return origin;
}

JobClient::JobClient(ClientOptions options)
    : options_(std::move(options)),
      socket_(MakeSocket(ctx_, zmq::socket_type::dealer)),
      setup_(PrepareClient(socket_, options_.keys.get(), Role::kCoordinator)),
      handshakes_(HandshakeWatch::Client(ctx_, socket_,
                                         fmt::format("the coordinator at {}", options_.endpoint),
                                         "client", options_.keys != nullptr)) {
  if (!setup_) return;
  if (fanout::Status s = Connect(socket_, options_.endpoint); !s) {
    spdlog::error("{}", s.error().message);
  }
}

Error JobClient::NoAnswer(Duration waited) const {
  if (!setup_) return setup_.error();
  const std::string why = handshakes_.Explain(waited);
  if (!why.empty()) return Unavailable("{}", why);
  return Unavailable("coordinator at {} did not answer within {:.1f} s", options_.endpoint,
                     ToMillis(waited) / 1000);
}

void JobClient::Send(const pb::Envelope& env) { fanout::Send(socket_, env); }

std::optional<pb::Envelope> JobClient::Receive(Duration timeout, int cancel_fd, bool* cancelled) {
  const TimePoint deadline = Now() + timeout;
  Message msg;
  while (true) {
    if (!received_.empty()) {
      pb::Envelope env = std::move(received_.front());
      received_.pop_front();
      return env;
    }
    if (RecvMessage(socket_, msg)) {
      for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
        Result<pb::Envelope> env = Decode(frame);
        if (!env) {
          spdlog::warn("dropped a frame from the coordinator: {}", env.error().message);
          continue;
        }
        received_.push_back(std::move(*env));
      }
      continue;
    }
    const TimePoint now = Now();
    // Refused, or keys on one side only: no answer will ever come.
    if (now >= deadline || !setup_ || !handshakes_.refused().empty()) return std::nullopt;
    std::vector<zmq::pollitem_t> items = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                          {handshakes_.monitor().handle(), 0, ZMQ_POLLIN, 0}};
    if (cancel_fd >= 0) items.push_back({nullptr, cancel_fd, ZMQ_POLLIN, 0});
    zmq::poll(items, std::chrono::ceil<milliseconds>(deadline - now));
    if (items[1].revents & ZMQ_POLLIN) handshakes_.Poll();
    if (items.size() > 2 && (items[2].revents & ZMQ_POLLIN)) {
      signalfd_siginfo info;
      while (read(cancel_fd, &info, sizeof info) == sizeof info) {
      }
      *cancelled = true;
      return std::nullopt;
    }
  }
}

Result<pb::Accepted> JobClient::Answer(const std::string& asked, int cancel_fd, bool* cancelled) {
  const TimePoint answer_by = Now() + options_.connect_timeout;
  while (true) {
    std::optional<pb::Envelope> env = Receive(answer_by - Now(), cancel_fd, cancelled);
    if (*cancelled) return Unavailable("interrupted before the coordinator answered");
    if (!env) return NoAnswer(options_.connect_timeout);
    if (env->has_accepted()) return env->accepted();
    if (env->has_rejected()) {
      if (env->rejected().unavailable()) return Unavailable("{}", env->rejected().reason());
      return InvalidArgument("job rejected: {}", env->rejected().reason());
    }
    if (env->has_error()) {
      switch (env->error().code()) {
        case pb::Error::UNKNOWN_JOB:
          return NotFound("{}", env->error().message());
        case pb::Error::WRONG_SERVICE:
          return WrongService(options_.endpoint, env->error().message());
        case pb::Error::BAD_REQUEST:
          return InvalidArgument("{}", env->error().message());
        default:
          spdlog::warn("coordinator says: {}", env->error().message());
      }
    }
    (void)asked;
  }
}

JobReport StartReport(const pb::JobSpec& spec, const pb::Accepted& accepted) {
  JobReport report;
  report.spec = spec;
  report.job_id = accepted.job_id();
  report.accepted_us = accepted.accepted_us();
  report.tasks.resize(accepted.tasks());
  for (uint32_t i = 0; i < report.tasks.size(); ++i) report.tasks[i].index = i + 1;
  return report;
}

void ApplyEvents(JobReport& report, const pb::TaskEvents& events, JobObserver& observer) {
  for (const pb::TaskEvent& event : events.events()) {
    if (event.index() == 0 || event.index() > report.tasks.size()) continue;
    TaskRecord& task = report.tasks[event.index() - 1];
    task.worker = event.worker();
    if (event.type() == pb::TaskEvent::DISPATCHED) {
      ++task.dispatches;
      observer.OnDispatched(report, task, event.attempt());
    } else if (event.type() == pb::TaskEvent::DONE && task.done) {
      if (!events.replay()) ++report.duplicate_results;
    } else if (event.type() == pb::TaskEvent::DONE) {
      task.done = true;
      task.result = event.result();
      ++report.finished;
      observer.OnDone(report, task);
    }
  }
}

Result<JobReport> JobClient::Run(const pb::JobSpec& spec, JobObserver& observer, int cancel_fd) {
  const TimePoint started = Now();
  pb::Envelope submit = NewEnvelope();
  *submit.mutable_submit()->mutable_spec() = spec;
  submit.mutable_submit()->set_results_only(!observer.WantsDispatched());
  Send(submit);
  bool cancelled = false;
  Result<pb::Accepted> accepted = Answer("submit", cancel_fd, &cancelled);
  if (!accepted) return accepted.error();
  JobReport report = StartReport(spec, *accepted);
  observer.OnAccepted(report);
  return Follow(std::move(report), observer, cancel_fd, /*owner=*/true, started);
}

Result<std::string> JobClient::Detach(const pb::JobSpec& spec) {
  pb::Envelope submit = NewEnvelope();
  *submit.mutable_submit()->mutable_spec() = spec;
  submit.mutable_submit()->mutable_spec()->set_detached(true);
  Send(submit);
  bool cancelled = false;
  Result<pb::Accepted> accepted = Answer("submit", -1, &cancelled);
  if (!accepted) return accepted.error();
  return accepted->job_id();
}

Result<JobReport> JobClient::Watch(const std::string& job_id, JobObserver& observer, int cancel_fd,
                                   bool until_now) {
  const TimePoint started = Now();
  pb::Envelope watch = NewEnvelope();
  watch.mutable_watch()->set_job_id(job_id);
  Send(watch);
  bool cancelled = false;
  Result<pb::Accepted> accepted = Answer("watch", cancel_fd, &cancelled);
  if (!accepted) return accepted.error();
  JobReport report = StartReport(accepted->spec(), *accepted);
  if (until_now && !accepted->ended()) return report;  // still running: no JobDone
  observer.OnAccepted(report);
  return Follow(std::move(report), observer, cancel_fd, /*owner=*/false, started);
}

Result<JobReport> JobClient::Follow(JobReport report, JobObserver& observer, int cancel_fd,
                                    bool owner, TimePoint started) {
  bool cancelled = false;
  TimePoint heard = Now();
  TimePoint next_heartbeat = heard + options_.heartbeat_interval;
  TimePoint next_watch = heard;
  bool watching = false;
  while (true) {
    std::optional<pb::Envelope> env = Receive(milliseconds(100), cancel_fd, &cancelled);
    const TimePoint now = Now();
    if (cancelled && !report.interrupted) {
      report.interrupted = true;
      if (!owner) {
        // A watcher stops watching; the job goes on.
        report.wall_ms = ToMillis(now - started);
        return report;
      }
      pb::Envelope cancel = NewEnvelope();
      cancel.mutable_cancel()->set_job_id(report.job_id);
      Send(cancel);
    }
    if (now >= next_heartbeat) {
      pb::Envelope hb = NewEnvelope();
      hb.mutable_heartbeat();
      Send(hb);
      next_heartbeat = now + options_.heartbeat_interval;
    }
    // Silent for three heartbeats: the coordinator may have restarted (and
    // resumed the job from its journal) or the connection dropped. Ask to
    // follow the job again; the answer replays what we may have missed.
    if (now - heard > 3 * options_.heartbeat_interval && now >= next_watch) {
      pb::Envelope watch = NewEnvelope();
      watch.mutable_watch()->set_job_id(report.job_id);
      watch.mutable_watch()->set_owner(owner);
      Send(watch);
      next_watch = now + 2 * options_.heartbeat_interval;
      if (!watching)
        spdlog::info("coordinator silent: asking to follow job {} again", report.job_id);
      watching = true;
    }
    if (!env) {
      if (!handshakes_.refused().empty()) return Unavailable("{}", handshakes_.refused());
      if (now - heard > options_.silence_timeout) {
        return Unavailable("lost the coordinator at {}: silent for {:.1f} s", options_.endpoint,
                           ToMillis(now - heard) / 1000);
      }
      observer.OnTick(report);
      continue;
    }
    heard = now;
    watching = false;
    if (env->has_events()) {
      if (env->events().job_id() != report.job_id) continue;  // from an earlier job
      ApplyEvents(report, env->events(), observer);
    } else if (env->has_waiting() && env->waiting().job_id() == report.job_id) {
      observer.OnWaiting(report, env->waiting().reason());
    } else if (env->has_job_done() && env->job_done().job_id() == report.job_id) {
      report.done = env->job_done();
      // Its submitter times the job itself; a watcher (or `fanout result`)
      // says what the coordinator measured, from acceptance to its end.
      report.wall_ms = owner ? ToMillis(Now() - started) : report.done.wall_ms();
      return report;
    } else if (env->has_error() && env->error().code() == pb::Error::UNKNOWN_JOB) {
      return Unavailable("{}", env->error().message());
    } else if (env->has_error()) {
      spdlog::warn("coordinator says: {}", env->error().message());
    }
  }
}

Result<pb::Envelope> JobClient::Ask(const pb::Envelope& request,
                                    const std::function<bool(const pb::Envelope&)>& wanted) {
  Send(request);
  const TimePoint deadline = Now() + options_.connect_timeout;
  bool cancelled = false;
  while (Now() < deadline) {
    std::optional<pb::Envelope> reply = Receive(deadline - Now(), -1, &cancelled);
    if (!reply) break;
    if (wanted(*reply)) return *reply;
    if (reply->has_error()) {
      switch (reply->error().code()) {
        case pb::Error::WRONG_SERVICE:
          return WrongService(options_.endpoint, reply->error().message());
        case pb::Error::UNKNOWN_JOB:
          return NotFound("{}", reply->error().message());
        case pb::Error::BAD_REQUEST:
          return InvalidArgument("{}", reply->error().message());
        default:
          break;
      }
    }
  }
  return NoAnswer(options_.connect_timeout);
}

Result<pb::StatusReply> JobClient::Status() {
  pb::Envelope env = NewEnvelope();
  env.mutable_status();
  Result<pb::Envelope> reply = Ask(env, [](const pb::Envelope& e) { return e.has_status_reply(); });
  if (!reply) return reply.error();
  const std::string& service = reply->status_reply().service();
  if (!service.empty() && service != "coordinator") {
    return WrongService(options_.endpoint, fmt::format("this is a {}", service));
  }
  return reply->status_reply();
}

Result<pb::JobsReply> JobClient::Jobs(bool all) {
  pb::Envelope env = NewEnvelope();
  env.mutable_jobs()->set_all(all);
  Result<pb::Envelope> reply = Ask(env, [](const pb::Envelope& e) { return e.has_jobs_reply(); });
  if (!reply) return reply.error();
  return reply->jobs_reply();
}

Result<pb::JobDone> JobClient::Cancel(const std::string& job_id, const std::string& reason) {
  pb::Envelope env = NewEnvelope();
  pb::Cancel* cancel = env.mutable_cancel();
  cancel->set_job_id(job_id);
  cancel->set_reason(reason);
  *cancel->mutable_by() = ThisProcess();
  Send(env);
  // The coordinator says at once that it ends the job (Accepted), then the
  // job ends: a bank job reads its book back first, which may take the
  // ledger's patience.
  bool cancelled = false;
  Result<pb::Accepted> accepted = Answer("cancel", -1, &cancelled);
  if (!accepted) return accepted.error();
  const TimePoint give_up = Now() + std::chrono::seconds(40);
  TimePoint heard = Now();
  while (Now() < give_up) {
    std::optional<pb::Envelope> reply = Receive(options_.heartbeat_interval, -1, &cancelled);
    if (!reply) {
      // A coordinator that restarted before it recorded the cancel runs the
      // job again from its journal: ask again (ending a job twice is one end).
      if (Now() - heard > 3 * options_.heartbeat_interval) {
        Send(env);
        heard = Now();
      }
      continue;
    }
    heard = Now();
    if (reply->has_job_done() && reply->job_done().job_id() == job_id) return reply->job_done();
    if (reply->has_error() && reply->error().code() == pb::Error::BAD_REQUEST) {
      return InvalidArgument("{}", reply->error().message());  // it ended meanwhile
    }
  }
  return Unavailable("job {} is ending, but the coordinator did not say it ended", job_id);
}

}  // namespace fanout::client
