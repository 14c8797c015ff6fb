// Replays every input kept under fuzz/corpus/<target>/ (seeds, what the
// fuzzers found interesting, and any crasher ever found) through its target.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "fuzz/targets.h"

namespace fanout::fuzz {
namespace {

size_t ReplayCorpus(const std::string& target, const std::function<void(std::string_view)>& run) {
  size_t inputs = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(FANOUT_CORPUS_DIR) + "/" + target)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    SCOPED_TRACE(entry.path().string());
    run(bytes.str());
    ++inputs;
  }
  return inputs;
}

TEST(FuzzReplayTest, EnvelopeCorpus) { EXPECT_GT(ReplayCorpus("envelope", Envelope), 0u); }
TEST(FuzzReplayTest, LedgerCorpus) { EXPECT_GT(ReplayCorpus("ledger", LedgerRequests), 0u); }
TEST(FuzzReplayTest, H1Corpus) { EXPECT_GT(ReplayCorpus("h1", H1), 0u); }
TEST(FuzzReplayTest, AuthorizedCorpus) { EXPECT_GT(ReplayCorpus("authorized", Authorized), 0u); }

}  // namespace
}  // namespace fanout::fuzz
