#include "client/report.h"

#include <fmt/format.h>

#include <cmath>

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

nlohmann::json ReportJson(const JobReport& report) {
  const pb::JobDone& done = report.done;
  const jobs::JobKind* kind = jobs::Kinds().For(report.spec);
  nlohmann::json results = nlohmann::json::array();
  for (const TaskRecord& task : report.tasks) {
    if (!task.done) continue;  // a cancelled job reports what finished
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
      {"concurrency", done.concurrency() > 0 ? done.concurrency() : report.spec.concurrency()},
      {"workers_used", done.workers_used()},
      {"tasks", done.tasks()},
      {"ok", done.ok()},
      {"failed", done.failed()},
      {"wall_ms", Round1(report.wall_ms)},
      {"results", std::move(results)},
  };
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

}  // namespace fanout::client
