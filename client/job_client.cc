#include "client/job_client.h"

#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/transport.h"

namespace fanout::client {

pb::JobSpec MathJob(pb::Model model, uint32_t count, uint64_t iterations) {
  pb::JobSpec spec;
  spec.set_model(model);
  spec.set_count(count);
  spec.mutable_math()->set_start(1);
  spec.mutable_math()->set_iterations(iterations);
  return spec;
}

JobClient::JobClient(ClientOptions options)
    : options_(std::move(options)), socket_(MakeSocket(ctx_, zmq::socket_type::dealer)) {
  if (fanout::Status s = Connect(socket_, options_.endpoint); !s) {
    spdlog::error("{}", s.error().message);
  }
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
    if (now >= deadline) return std::nullopt;
    std::vector<zmq::pollitem_t> items = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    if (cancel_fd >= 0) items.push_back({nullptr, cancel_fd, ZMQ_POLLIN, 0});
    zmq::poll(items, std::chrono::ceil<milliseconds>(deadline - now));
    if (items.size() > 1 && (items[1].revents & ZMQ_POLLIN)) {
      signalfd_siginfo info;
      while (read(cancel_fd, &info, sizeof info) == sizeof info) {
      }
      *cancelled = true;
      return std::nullopt;
    }
  }
}

Result<JobReport> JobClient::Run(const pb::JobSpec& spec, JobObserver& observer, int cancel_fd) {
  JobReport report;
  report.spec = spec;
  const TimePoint started = Now();
  {
    pb::Envelope env = NewEnvelope();
    *env.mutable_submit()->mutable_spec() = spec;
    Send(env);
  }
  // The first answer: Accepted or Rejected.
  bool cancelled = false;
  const TimePoint answer_by = started + options_.connect_timeout;
  while (report.job_id.empty()) {
    std::optional<pb::Envelope> env = Receive(answer_by - Now(), cancel_fd, &cancelled);
    if (cancelled) return Unavailable("interrupted before the coordinator answered");
    if (!env) {
      return Unavailable("coordinator at {} did not answer within {:.1f} s", options_.endpoint,
                         ToMillis(options_.connect_timeout) / 1000);
    }
    if (env->has_rejected()) {
      return InvalidArgument("job rejected: {}", env->rejected().reason());
    }
    if (env->has_accepted()) {
      report.job_id = env->accepted().job_id();
      report.accepted_us = env->accepted().accepted_us();
      report.tasks.resize(env->accepted().tasks());
      for (uint32_t i = 0; i < report.tasks.size(); ++i) report.tasks[i].index = i + 1;
    }
  }
  observer.OnAccepted(report);

  TimePoint heard = Now();
  TimePoint next_heartbeat = heard + options_.heartbeat_interval;
  bool cancel_sent = false;
  TimePoint next_watch = heard;
  bool watching = false;
  while (true) {
    std::optional<pb::Envelope> env = Receive(milliseconds(100), cancel_fd, &cancelled);
    const TimePoint now = Now();
    if (cancelled && !cancel_sent) {
      pb::Envelope cancel = NewEnvelope();
      cancel.mutable_cancel()->set_job_id(report.job_id);
      Send(cancel);
      cancel_sent = true;
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
      Send(watch);
      next_watch = now + 2 * options_.heartbeat_interval;
      if (!watching)
        spdlog::info("coordinator silent: asking to follow job {} again", report.job_id);
      watching = true;
    }
    if (!env) {
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
      for (const pb::TaskEvent& event : env->events().events()) {
        if (event.index() == 0 || event.index() > report.tasks.size()) continue;
        TaskRecord& task = report.tasks[event.index() - 1];
        task.worker = event.worker();
        if (event.type() == pb::TaskEvent::DISPATCHED) {
          ++task.dispatches;
          observer.OnDispatched(report, task, event.attempt());
        } else if (event.type() == pb::TaskEvent::DONE && task.done) {
          if (!env->events().replay()) ++report.duplicate_results;
        } else if (event.type() == pb::TaskEvent::DONE) {
          task.done = true;
          task.result = event.result();
          ++report.finished;
          observer.OnDone(report, task);
        }
      }
    } else if (env->has_waiting() && env->waiting().job_id() == report.job_id) {
      observer.OnWaiting(report, env->waiting().reason());
    } else if (env->has_job_done() && env->job_done().job_id() == report.job_id) {
      report.done = env->job_done();
      report.wall_ms = ToMillis(Now() - started);
      return report;
    } else if (env->has_error() && env->error().code() == pb::Error::UNKNOWN_JOB) {
      return Unavailable("{}", env->error().message());
    } else if (env->has_error()) {
      spdlog::warn("coordinator says: {}", env->error().message());
    }
  }
}

Result<pb::StatusReply> JobClient::Status() {
  pb::Envelope env = NewEnvelope();
  env.mutable_status();
  Send(env);
  const TimePoint deadline = Now() + options_.connect_timeout;
  bool cancelled = false;
  while (Now() < deadline) {
    std::optional<pb::Envelope> reply = Receive(deadline - Now(), -1, &cancelled);
    if (reply && reply->has_status_reply()) return reply->status_reply();
  }
  return Unavailable("coordinator at {} did not answer within {:.1f} s", options_.endpoint,
                     ToMillis(options_.connect_timeout) / 1000);
}

}  // namespace fanout::client
