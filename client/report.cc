#include "client/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <set>

#include "common/text.h"
#include "jobs/registry.h"

namespace fanout::client {
namespace {

double Round1(double x) { return std::round(x * 10.0) / 10.0; }

}  // namespace

std::string FormatValue(const pb::Result& r) {
  switch (r.value_case()) {
    case pb::Result::kNumber:
      return PythonFloat(r.number());
    case pb::Result::kText:
      return r.text();
    case pb::Result::kData:
      return fmt::format("({} bytes, not text)", r.data().size());
    case pb::Result::VALUE_NOT_SET:
      break;
  }
  return "";
}

std::string EndedState(const pb::JobDone& done) {
  const std::string& reason = done.reason();
  const bool cancelled = reason.starts_with("cancelled") || reason == "the client went away" ||
                         reason.starts_with("the coordinator stopped");
  return cancelled ? "cancelled" : !reason.empty() || done.failed() > 0 ? "failed" : "done";
}

nlohmann::json ReportJson(const JobReport& report, bool with_results) {
  const bool ended = !report.done.job_id().empty();
  pb::JobDone done = report.done;
  if (!ended) {  // the counts so far
    done = pb::JobDone();
    std::set<std::string> workers;
    done.set_tasks(static_cast<uint32_t>(report.tasks.size()));
    for (const TaskRecord& task : report.tasks) {
      if (!task.done) continue;
      task.result.ok() ? done.set_ok(done.ok() + 1) : done.set_failed(done.failed() + 1);
      if (!task.result.worker_id().empty()) workers.insert(task.result.worker_id());
    }
    done.set_workers_used(static_cast<uint32_t>(workers.size()));
  }
  const jobs::JobKind* kind = jobs::Kinds().For(report.spec);
  nlohmann::json results = nlohmann::json::array();
  for (const TaskRecord& task : report.tasks) {
    if (!task.done || !with_results) continue;  // a cancelled job reports what finished
    const pb::Result& r = task.result;
    nlohmann::json row = {
        {"index", task.index},
        {"ok", r.ok()},
        {"value", !r.ok()           ? nlohmann::json(nullptr)
                  : r.has_data()    ? nlohmann::json(Base64(r.data()))
                  : kind != nullptr ? kind->JsonValue(report.spec, r)
                                    : jobs::PlainValue(r)},
        {"error", r.ok() ? nlohmann::json(nullptr) : nlohmann::json(r.error())},
        {"worker", r.worker_id().empty() ? task.worker : r.worker_id()},
        {"attempts", r.attempt()},
        {"start_ms", nullptr},
        {"end_ms", nullptr},
    };
    if (r.started_us() > 0) {
      row["start_ms"] = Round1((r.started_us() - report.accepted_us) / 1000.0);
      row["end_ms"] = Round1((r.finished_us() - report.accepted_us) / 1000.0);
    }
    if (r.ok() && r.has_data()) row["value_encoding"] = "base64";
    if (kind != nullptr) kind->AddJsonFields(r, row);
    results.push_back(std::move(row));
  }
  nlohmann::json out = {
      {"job_id", report.job_id},
      {"kind", jobs::KindName(report.spec)},
      {"model", ModelName(report.spec.model())},
      {"state", ended ? EndedState(done) : "running"},
      {"concurrency", done.concurrency() > 0 ? done.concurrency() : report.spec.concurrency()},
      {"workers_used", done.workers_used()},
      {"tasks", done.tasks()},
      {"ok", done.ok()},
      {"failed", done.failed()},
      {"wall_ms", Round1(report.wall_ms)},
  };
  if (with_results) out["results"] = std::move(results);
  if (!done.reason().empty()) out["ended_early"] = done.reason();
  if (done.has_ledger()) {
    const pb::LedgerSnapshot& l = done.ledger();
    nlohmann::json balances = nlohmann::json::object();
    for (const auto& [account, balance] : l.balances()) balances[account] = balance;
    out["ledger"] = {{"balances", balances}, {"sum", l.sum()}, {"expected_sum", l.expected_sum()}};
    if (!l.error().empty()) out["ledger"]["error"] = l.error();
  }
  return out;
}

std::string WorkerState(const pb::StatusReply::Worker& w) {
  if (w.draining()) return "draining";
  const uint32_t room = w.slots() > 0 ? w.slots() : w.concurrency();
  if (w.inflight() >= room && room > 0) return "busy";
  return w.inflight() > 0 ? "working" : "idle";
}

std::string Runs(const pb::StatusReply::Worker& w) {
  std::string out;
  for (const std::string& kind : w.serves()) {
    if (!out.empty()) out += ", ";
    out += kind;
    if (kind == "call" && !w.functions().empty()) {
      out += fmt::format(" ({})", fmt::join(w.functions(), ", "));
    }
  }
  return out;
}

nlohmann::json StatusJson(const pb::StatusReply& s) {
  nlohmann::json workers = nlohmann::json::array();
  for (const auto& w : s.workers()) {
    workers.push_back(
        {{"worker_id", w.worker_id()},
         {"host", w.host()},
         {"pid", w.pid()},
         {"state", WorkerState(w)},
         {"threads", w.concurrency()},
         {"slots", w.slots() > 0 ? nlohmann::json(w.slots()) : nullptr},
         {"in_flight", w.inflight()},
         {"done", w.done()},
         {"failed", w.failed()},
         {"heard_ms_ago", w.heard_ms_ago()},
         {"serves", std::vector<std::string>(w.serves().begin(), w.serves().end())},
         {"functions", std::vector<std::string>(w.functions().begin(), w.functions().end())}});
  }
  nlohmann::json ledger = nullptr;
  if (!s.ledger().endpoint().empty()) {
    ledger = {{"endpoint", s.ledger().endpoint()},
              {"answered_ms_ago", s.ledger().answered_ms_ago() >= 0
                                      ? nlohmann::json(s.ledger().answered_ms_ago())
                                      : nullptr}};
  }
  return {{"workers", workers},
          {"jobs_running", s.jobs()},
          {"tasks_queued", s.tasks_queued()},
          {"tasks_per_s", std::round(s.tasks_per_s() * 10) / 10},
          {"tasks_dispatched", s.tasks_dispatched()},
          {"tasks_requeued", s.tasks_requeued()},
          {"duplicates_dropped", s.duplicates_dropped()},
          {"workers_lost", s.workers_lost()},
          {"workers_left", s.workers_left()},
          {"keyed", s.keyed()},
          {"refused", s.refused()},
          {"ledger", ledger}};
}

nlohmann::json JobInfoJson(const pb::JobInfo& j) {
  nlohmann::json by = {{"host", j.origin().host()}, {"pid", j.origin().pid()}};
  if (!j.origin().user().empty()) by["user"] = j.origin().user();
  nlohmann::json out = {
      {"job_id", j.job_id()},
      {"kind", j.kind()},
      {"model", ModelName(j.model())},
      {"state", j.state()},
      {"tasks", j.tasks()},
      {"ok", j.ok()},
      {"failed", j.failed()},
      {"running", j.running()},
      {"workers", j.workers()},
      {"priority", j.priority()},
      {"detached", j.detached()},
      {"submitted_by", by},
      {"accepted_ms", j.accepted_us() / 1000},
      {"ended_ms",
       j.ended_us() > 0 ? nlohmann::json(j.ended_us() / 1000) : nlohmann::json(nullptr)},
  };
  if (!j.reason().empty()) out["reason"] = j.reason();
  return out;
}

}  // namespace fanout::client
