#include "common/codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace fanout {
namespace {

pb::Envelope RoundTrip(const pb::Envelope& env) {
  zmq::message_t frame = Encode(env);
  Result<pb::Envelope> back = Decode(frame);
  EXPECT_TRUE(back.ok()) << back.error().message;
  return back.ok() ? *back : pb::Envelope();
}

TEST(CodecTest, TaskRoundTrips) {
  pb::Envelope env = NewEnvelope();
  pb::Task* task = env.mutable_task();
  task->set_job_id("3f9a1c2e-1");
  task->set_index(7);
  task->set_attempt(2);
  task->set_model(pb::THREADS);
  task->set_concurrency(6);
  task->mutable_math()->set_start(7);
  task->mutable_math()->set_iterations(2'000'000);

  pb::Envelope back = RoundTrip(env);
  ASSERT_EQ(back.body_case(), pb::Envelope::kTask);
  EXPECT_EQ(back.task().job_id(), "3f9a1c2e-1");
  EXPECT_EQ(back.task().index(), 7u);
  EXPECT_EQ(back.task().attempt(), 2u);
  EXPECT_EQ(back.task().model(), pb::THREADS);
  EXPECT_EQ(back.task().math().iterations(), 2'000'000u);
  EXPECT_EQ(BodyName(back), "task");
}

TEST(CodecTest, ResultKeepsExactDoubleAndText) {
  pb::Envelope env = NewEnvelope();
  env.mutable_result()->set_number(2000001.0000000002);
  EXPECT_EQ(RoundTrip(env).result().number(), 2000001.0000000002);

  env.mutable_result()->set_text("Nidoran\u2640");
  EXPECT_EQ(RoundTrip(env).result().text(), "Nidoran\u2640");
}

TEST(CodecTest, EveryBodyRoundTrips) {
  std::vector<pb::Envelope> all(15, NewEnvelope());
  all[0].mutable_hello()->set_worker_id("w1");
  all[1].mutable_heartbeat();
  all[2].mutable_result()->set_index(1);
  all[3].mutable_task()->set_index(1);
  all[4].mutable_drain()->set_reason("SIGTERM");
  all[5].mutable_returned()->set_index(3);
  all[6].mutable_submit()->mutable_spec()->set_count(20);
  all[7].mutable_accepted()->set_job_id("j");
  all[8].mutable_rejected()->set_reason("no");
  all[9].mutable_events()->add_events()->set_index(4);
  all[10].mutable_job_done()->set_ok(20);
  all[11].mutable_cancel()->set_job_id("j");
  all[12].mutable_error()->set_code(pb::Error::UNKNOWN_PEER);
  all[13].mutable_status();
  all[14].mutable_status_reply()->add_workers()->set_worker_id("w1");
  for (const auto& env : all) {
    pb::Envelope back = RoundTrip(env);
    EXPECT_EQ(back.body_case(), env.body_case()) << BodyName(env);
    EXPECT_EQ(back.SerializeAsString(), env.SerializeAsString()) << BodyName(env);
  }
}

TEST(CodecTest, RejectsOtherProtocolVersion) {
  pb::Envelope env = NewEnvelope();
  env.mutable_heartbeat();
  env.set_version(kProtocolVersion + 1);
  const std::string bytes = env.SerializeAsString();
  Result<pb::Envelope> back = Decode(bytes.data(), bytes.size());
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("protocol version 2"), std::string::npos)
      << back.error().message;
}

TEST(CodecTest, RejectsEnvelopeWithoutBody) {
  const std::string bytes = NewEnvelope().SerializeAsString();
  Result<pb::Envelope> back = Decode(bytes.data(), bytes.size());
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("no body"), std::string::npos);
}

TEST(CodecTest, RejectsOversizedFrameWithoutParsingIt) {
  const std::string big(kMaxFrameBytes + 1, 'x');
  Result<pb::Envelope> back = Decode(big.data(), big.size());
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("limit"), std::string::npos);
}

TEST(CodecTest, GarbageAndTruncatedFramesAreErrorsNotCrashes) {
  pb::Envelope env = NewEnvelope();
  env.mutable_task()->set_job_id("job");
  env.mutable_task()->mutable_math()->set_iterations(5);
  const std::string good = env.SerializeAsString();

  std::mt19937 rng(42);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes = good.substr(0, rng() % good.size());  // truncated
    } else {
      bytes.resize(rng() % 64);
      for (char& c : bytes) c = static_cast<char>(rng());
    }
    Result<pb::Envelope> back = Decode(bytes.data(), bytes.size());
    if (back.ok()) {
      // The rare random bytes that parse must still be a versioned body.
      EXPECT_EQ(back->version(), kProtocolVersion);
      EXPECT_NE(back->body_case(), pb::Envelope::BODY_NOT_SET);
      ++decoded;
    }
  }
  EXPECT_LT(decoded, 200);
}

TEST(CodecTest, ModelNamesParseBack) {
  for (pb::Model m : {pb::SYNC, pb::THREADS, pb::ASYNC}) {
    Result<pb::Model> back = ParseModel(ModelName(m));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, m);
  }
  EXPECT_FALSE(ParseModel("greenlets").ok());
}

}  // namespace
}  // namespace fanout
