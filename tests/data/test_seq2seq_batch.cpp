// Sequence-pair batching (data/seq2seq_batch.h): the byte vocabulary, padding and target shift,
// length filtering, and bucketing (every pair once, limits held, seeded order, little padding).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>

#include "data/seq2seq_batch.h"

using namespace scalpel;
using namespace scalpel::data;

namespace {

std::vector<SentencePair> pairs_of_lengths(const std::vector<std::pair<int, int>>& lengths) {
  std::vector<SentencePair> p;
  for (const auto& [s, t] : lengths)
    p.push_back({std::string(static_cast<size_t>(s), 'a'), std::string(static_cast<size_t>(t), 'b')});
  return p;
}

}  // namespace

TEST(ByteVocab, RoundTripsUtf8AndDropsSpecials) {
  const std::string s = "Grüße, 世界";
  const auto ids = ByteVocab::encode(s);
  EXPECT_EQ(ids.size(), s.size());
  for (int64_t id : ids) EXPECT_TRUE(id >= 0 && id < 256);
  auto with_specials = ids;
  with_specials.insert(with_specials.begin(), ByteVocab::kBos);
  with_specials.push_back(ByteVocab::kEos);
  with_specials.push_back(ByteVocab::kPad);
  EXPECT_EQ(ByteVocab::decode(with_specials), s);
}

TEST(Seq2SeqBatch, PadsAndShiftsTheTarget) {
  const std::vector<SentencePair> pairs{{"ab", "xyz"}, {"abcd", "q"}};
  const Seq2SeqBatch b = make_seq2seq_batch(pairs, {1, 0});
  const int64_t P = ByteVocab::kPad, S = ByteVocab::kBos, E = ByteVocab::kEos, I = Seq2SeqBatch::kIgnoreTarget;
  EXPECT_EQ(b.src.shape, (Shape{2, 5}));
  EXPECT_EQ(b.src.data, (std::vector<int64_t>{'a', 'b', 'c', 'd', E, 'a', 'b', E, P, P}));
  EXPECT_EQ(b.src_lengths, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(b.tgt_in.shape, (Shape{2, 4}));
  EXPECT_EQ(b.tgt_in.data, (std::vector<int64_t>{S, 'q', P, P, S, 'x', 'y', 'z'}));
  EXPECT_EQ(b.tgt_out.data, (std::vector<int64_t>{'q', E, I, I, 'x', 'y', 'z', E}));
  EXPECT_EQ(b.target_tokens, 6);
  EXPECT_EQ(b.pairs, (std::vector<size_t>{1, 0}));
  EXPECT_THROW(make_seq2seq_batch(pairs, {2}), std::invalid_argument);
  EXPECT_THROW(make_seq2seq_batch(pairs, {}), std::invalid_argument);
}

TEST(Seq2SeqBatch, FilterByLengthCountsWhatItDrops) {
  const auto p = pairs_of_lengths({{3, 3}, {4, 2}, {2, 5}, {4, 4}});
  const LengthFiltered f = filter_by_length(p, 5);  // bytes + 1 <= 5
  EXPECT_EQ(f.pairs.size(), 3u);                    // (2, 5) is out: its target needs 6 positions
  EXPECT_EQ(f.dropped, 1);
  for (const auto& q : f.pairs) EXPECT_TRUE(q.source.size() <= 4 && q.target.size() <= 4);
}

TEST(BucketBatches, CoversEveryPairOnceWithinTheLimitsAndIsSeeded) {
  std::vector<std::pair<int, int>> lengths;
  for (int i = 0; i < 500; ++i) lengths.push_back({1 + (i * 37) % 60, 1 + (i * 53) % 70});
  const auto pairs = pairs_of_lengths(lengths);
  const auto o = BucketOptions().batch_size(32).max_tokens(1024).window(4).seed(3);
  const auto batches = bucket_batches(pairs, o);
  std::multiset<size_t> seen;
  int64_t padded = 0, real = 0;
  for (const auto& b : batches) {
    ASSERT_FALSE(b.empty());
    EXPECT_LE(b.size(), 32u);
    int64_t longest = 0;
    for (size_t i : b) {
      seen.insert(i);
      const int64_t l = static_cast<int64_t>(std::max(pairs[i].source.size(), pairs[i].target.size())) + 1;
      longest = std::max(longest, l);
      real += l;
    }
    EXPECT_LE(longest * static_cast<int64_t>(b.size()), 1024);
    padded += longest * static_cast<int64_t>(b.size());
  }
  EXPECT_EQ(seen.size(), pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) EXPECT_EQ(seen.count(i), 1u) << i;
  // Sorting within windows of 4 batches keeps padding small next to unsorted batches (a window of
  // one batch: sorting inside a batch changes nothing).
  const double frac = static_cast<double>(padded - real) / static_cast<double>(padded);
  int64_t padded1 = 0;
  for (const auto& b : bucket_batches(pairs, BucketOptions().batch_size(32).max_tokens(1024).window(1).seed(3))) {
    int64_t longest = 0;
    for (size_t i : b) {
      longest = std::max(longest, static_cast<int64_t>(std::max(pairs[i].source.size(), pairs[i].target.size())) + 1);
    }
    padded1 += longest * static_cast<int64_t>(b.size());
  }
  const double frac1 = static_cast<double>(padded1 - real) / static_cast<double>(padded1);
  EXPECT_LT(frac, 0.5 * frac1) << "padding " << frac << " sorted, " << frac1 << " unsorted";
  EXPECT_EQ(bucket_batches(pairs, o), batches);
  EXPECT_NE(bucket_batches(pairs, BucketOptions().batch_size(32).max_tokens(1024).window(4).seed(4)), batches);
  EXPECT_THROW(bucket_batches(pairs, BucketOptions().batch_size(0)), std::invalid_argument);
}

TEST(PairBatchStream, CrossesEpochsAndResumesExactly) {
  std::vector<std::pair<int, int>> lengths;
  for (int i = 0; i < 50; ++i) lengths.push_back({1 + i % 9, 1 + (i * 7) % 11});
  const auto pairs = pairs_of_lengths(lengths);
  const auto o = BucketOptions().batch_size(8).seed(5);
  PairBatchStream a(pairs, o);
  std::vector<std::vector<size_t>> first;
  for (int i = 0; i < 9; ++i) first.push_back(a.next().pairs);  // 7 batches per epoch: crosses into epoch 1
  EXPECT_EQ(a.epoch(), 1);
  const StateDict saved = a.state_dict();
  std::vector<std::vector<size_t>> rest_a, rest_b;
  for (int i = 0; i < 10; ++i) rest_a.push_back(a.next().pairs);
  PairBatchStream b(pairs, o);
  b.load_state_dict(saved);
  for (int i = 0; i < 10; ++i) rest_b.push_back(b.next().pairs);
  EXPECT_EQ(rest_a, rest_b);
  // Epoch 1 is another order than epoch 0.
  EXPECT_NE(std::vector<std::vector<size_t>>(first.begin(), first.begin() + 2),
            std::vector<std::vector<size_t>>(first.begin() + 7, first.begin() + 9));
  StateDict bad;
  bad.set_int("epoch", 0);
  bad.set_int("position", 99);
  EXPECT_THROW(b.load_state_dict(bad), std::invalid_argument);
}

// Data parallel: N sharded streams with the same options return, batch by batch, contiguous parts
// that join into the unsharded stream's batch; each knows the whole batch's target tokens; a
// batch with fewer pairs than ranks leaves some parts empty instead of failing.
TEST(PairBatchStream, ShardsTileEveryGlobalBatch) {
  std::vector<std::pair<int, int>> lengths;
  for (int i = 0; i < 45; ++i) lengths.push_back({1 + i % 9, 1 + (i * 5) % 13});
  const auto pairs = pairs_of_lengths(lengths);
  const auto o = BucketOptions().batch_size(8).max_tokens(40).seed(2);
  for (int64_t ranks : {2, 3}) {
    PairBatchStream whole(pairs, o);
    std::vector<std::unique_ptr<PairBatchStream>> parts;
    for (int64_t r = 0; r < ranks; ++r)
      parts.push_back(std::make_unique<PairBatchStream>(pairs, BucketOptions(o).shard(r, ranks)));
    bool saw_empty = false;
    for (int step = 0; step < 20; ++step) {  // crosses an epoch
      const Seq2SeqBatch g = whole.next();
      EXPECT_EQ(g.global_target_tokens, g.target_tokens);
      std::vector<size_t> joined;
      int64_t tokens = 0;
      for (auto& p : parts) {
        const Seq2SeqBatch b = p->next();
        EXPECT_EQ(b.global_target_tokens, g.target_tokens) << ranks << " ranks, step " << step;
        saw_empty = saw_empty || b.empty();
        joined.insert(joined.end(), b.pairs.begin(), b.pairs.end());
        tokens += b.target_tokens;
      }
      EXPECT_EQ(joined, g.pairs) << ranks << " ranks, step " << step;
      EXPECT_EQ(tokens, g.target_tokens);
    }
    if (ranks == 3) {
      EXPECT_TRUE(saw_empty) << "max_tokens 40 makes batches of 1-2 long pairs";
    }
  }
  EXPECT_THROW(PairBatchStream(pairs, BucketOptions(o).shard(3, 3)), std::invalid_argument);
}
