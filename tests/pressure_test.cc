// Back-pressure: a client that submits a million tasks and then does not
// read pauses its own job; the coordinator's memory stays bounded and other
// clients' jobs run at full speed meanwhile.

#include <gtest/gtest.h>

#include <iostream>
#include <thread>

#include "client/job_client.h"
#include "client/local_cluster.h"
#include "common/subprocess.h"
#include "common/transport.h"
#include "tests/harness.h"

namespace fanout::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

pb::JobSpec TinyTasks(uint32_t count) {
  pb::JobSpec spec = client::MathJob(pb::THREADS, count, 0);
  spec.set_concurrency(64);
  return spec;
}

TEST(PressureTest, AMillionTaskJobWhoseClientStopsReadingPausesAndLeavesOthersAlone) {
  auto cluster = client::LocalCluster::Start(ClusterWith(2));
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  const pid_t coordinator = (*cluster)->coordinator().pid();
  const double before = RssMiB(coordinator);

  // The slow client: submits, then only heartbeats (so it is not taken for
  // gone) and reads nothing for a few seconds.
  zmq::context_t ctx(1);
  zmq::socket_t slow = MakeSocket(ctx, zmq::socket_type::dealer);
  slow.set(zmq::sockopt::rcvhwm, 16);  // its own inbox fills soon too
  ASSERT_TRUE(Connect(slow, (*cluster)->clients_endpoint()).ok());
  pb::Envelope submit = NewEnvelope();
  *submit.mutable_submit()->mutable_spec() = TinyTasks(1'000'000);
  ASSERT_TRUE(Send(slow, submit));
  auto heartbeat = [&] {
    pb::Envelope hb = NewEnvelope();
    hb.mutable_heartbeat();
    (void)Send(slow, hb);
  };

  // Meanwhile another client's job runs to the end.
  double peak = before;
  client::JobClient other({.endpoint = (*cluster)->clients_endpoint()});
  struct Sampler : client::JobObserver {
    std::function<void()> tick;
    void OnTick(const client::JobReport&) override { tick(); }
    void OnDone(const client::JobReport& r, const client::TaskRecord&) override {
      if (r.finished % 500 == 0) tick();
    }
  } sampler;
  sampler.tick = [&] {
    heartbeat();
    peak = std::max(peak, RssMiB(coordinator));
  };
  std::this_thread::sleep_for(milliseconds(500));
  Result<client::JobReport> report = other.Run(TinyTasks(20'000), sampler);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->done.ok(), 20'000u);
  for (TimePoint until = Now() + seconds(3); Now() < until;) {
    sampler.tick();
    std::this_thread::sleep_for(milliseconds(100));
  }
  std::cout << fmt::format(
      "coordinator RSS {:.1f} MiB before, {:.1f} MiB at most while a "
      "1,000,000-task job's client did not read\n",
      before, peak);
#ifndef __SANITIZE_ADDRESS__  // ASan's quarantine holds freed memory: RSS says nothing there
  EXPECT_LT(peak - before, 48) << "the coordinator buffers what the slow client does not read";
#endif
  // Its job is paused: nothing more of it goes out while nobody reads.
  auto dispatched = [&] {
    Result<pb::StatusReply> status = other.Status();
    EXPECT_TRUE(status.ok());
    return status ? status->tasks_dispatched() : 0;
  };
  const uint64_t paused_at = dispatched();
  sampler.tick();
  std::this_thread::sleep_for(seconds(1));
  EXPECT_LT(dispatched() - paused_at, 1000u) << "the slow client's job kept running";

  // The slow client reads again: its job goes on (events arrive), and it can
  // cancel it and hear the end.
  uint32_t done_events = 0;
  std::optional<pb::JobDone> ended;
  std::string job_id;
  bool cancelled = false;
  Message msg;
  for (TimePoint until = Now() + seconds(60); !ended && Now() < until;) {
    std::vector<zmq::pollitem_t> items = {{slow.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, milliseconds(100));
    while (RecvMessage(slow, msg)) {
      for (const zmq::message_t& frame : Payloads(msg, /*from_router=*/false)) {
        Result<pb::Envelope> env = Decode(frame);
        if (!env) continue;
        if (env->has_accepted()) job_id = env->accepted().job_id();
        if (env->has_job_done()) ended = env->job_done();
        if (!env->has_events()) continue;
        for (const auto& e : env->events().events()) done_events += e.type() == pb::TaskEvent::DONE;
      }
    }
    if (!cancelled && done_events > 50'000 && !job_id.empty()) {
      pb::Envelope cancel = NewEnvelope();
      cancel.mutable_cancel()->set_job_id(job_id);
      ASSERT_TRUE(Send(slow, cancel));
      cancelled = true;
    }
  }
  ASSERT_TRUE(ended.has_value()) << "the slow job never ended; " << done_events << " results read";
  EXPECT_EQ(ended->reason(), "cancelled by the client");
  EXPECT_GT(ended->ok(), 50'000u);
  EXPECT_LT(ended->ok(), 1'000'000u);
  EXPECT_TRUE((*cluster)->coordinator().Running());
}

}  // namespace
}  // namespace fanout::testing
