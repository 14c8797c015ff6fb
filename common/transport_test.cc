#include "common/transport.h"

#include <gtest/gtest.h>

namespace fanout {
namespace {

std::vector<zmq::message_t> Frames(std::initializer_list<uint32_t> indexes) {
  std::vector<zmq::message_t> frames;
  for (uint32_t i : indexes) {
    pb::Envelope env = NewEnvelope();
    env.mutable_task()->set_index(i);
    frames.push_back(Encode(env));
  }
  return frames;
}

std::vector<uint32_t> Indexes(std::span<const zmq::message_t> payloads) {
  std::vector<uint32_t> out;
  for (const zmq::message_t& frame : payloads) {
    Result<pb::Envelope> env = Decode(frame);
    EXPECT_TRUE(env.ok());
    if (env) out.push_back(env->task().index());
  }
  return out;
}

bool RecvWithin(zmq::socket_t& socket, Message& msg) {
  std::vector<zmq::pollitem_t> items = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, std::chrono::milliseconds(5000));
  return RecvMessage(socket, msg);
}

TEST(TransportTest, BatchesArriveWholeAndInOrderBothWays) {
  zmq::context_t ctx(1);
  zmq::socket_t router = MakeSocket(ctx, zmq::socket_type::router);
  zmq::socket_t dealer = MakeSocket(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::routing_id, "w1");
  ASSERT_TRUE(Bind(router, "inproc://batch").ok());
  ASSERT_TRUE(Connect(dealer, "inproc://batch").ok());

  std::vector<zmq::message_t> up = Frames({1, 2, 3});
  ASSERT_TRUE(SendBatch(dealer, {}, up));
  Message msg;
  ASSERT_TRUE(RecvWithin(router, msg));
  EXPECT_EQ(PeerName(msg.frames[0]), "w1");
  EXPECT_EQ(Indexes(Payloads(msg, /*from_router=*/true)), (std::vector<uint32_t>{1, 2, 3}));

  std::vector<zmq::message_t> down = Frames({7, 8});
  ASSERT_TRUE(SendBatch(router, "w1", down));
  ASSERT_TRUE(RecvWithin(dealer, msg));
  EXPECT_EQ(Indexes(Payloads(msg, /*from_router=*/false)), (std::vector<uint32_t>{7, 8}));
}

TEST(TransportTest, BatchToAGonePeerFailsAndKeepsTheFrames) {
  zmq::context_t ctx(1);
  zmq::socket_t router = MakeSocket(ctx, zmq::socket_type::router);
  std::vector<zmq::message_t> frames = Frames({4, 5});
  EXPECT_FALSE(SendBatch(router, "nobody", frames));
  EXPECT_EQ(Indexes(frames), (std::vector<uint32_t>{4, 5}));
}

TEST(TransportTest, RouterMessageWithOnlyARoutingFrameHasNoPayloads) {
  Message msg;
  msg.frames.emplace_back("peer", 4);
  EXPECT_TRUE(Payloads(msg, /*from_router=*/true).empty());
  EXPECT_EQ(Payloads(msg, /*from_router=*/false).size(), 1u);
}

}  // namespace
}  // namespace fanout
