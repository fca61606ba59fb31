// nn::Seq2Seq and its layers (issue 16): finite-difference gradchecks of cross-attention, the
// decoder block and the whole model; padding invariances (padded source positions and padded
// targets change nothing that is real); incremental decoding equal to full decoding; greedy and
// beam search with and without the key/value cache giving the same tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "gradcheck.h"
#include "nn/seq2seq.h"
#include "nn/seq2seq_decode.h"

using namespace scalpel;
using scalpel::testing::gradcheck;
using scalpel::testing::GradcheckOptions;

namespace {

Tensor randn(const Shape& s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  return mul(Tensor::normal(s, g), scale);
}

nn::Seq2SeqOptions tiny(bool shared = true, bool tied = true) {
  return nn::Seq2SeqOptions()
      .vocab(13)
      .encoder_layers(1)
      .decoder_layers(2)
      .heads(2)
      .d_model(8)
      .d_ff(12)
      .max_len(12)
      .shared_embeddings(shared)
      .tied(tied)
      .init_std(0.3);
}

// Random ids in [0, vocab) for a [B, T] batch.
IndexTensor random_ids(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  std::vector<int64_t> v(static_cast<size_t>(B * T));
  for (auto& x : v) x = g.randint(vocab);
  return IndexTensor(v, {B, T});
}

}  // namespace

TEST(Seq2SeqGradcheck, CrossAttentionWithPadding) {
  Generator gen(1);
  nn::MultiheadCrossAttention a(nn::AttentionOptions(8, 2), gen);
  const Tensor x = randn({2, 3, 8}, 2), mem = randn({2, 4, 8}, 3);
  for (const std::vector<int64_t>& lengths : {std::vector<int64_t>{}, std::vector<int64_t>{4, 2}}) {
    SCOPED_TRACE(lengths.empty() ? "all keys" : "lengths 4, 2");
    EXPECT_TRUE(gradcheck("cross-attention queries and memory",
                          [&](const auto& in) { return a.forward(in[0], in[1], lengths); }, {x, mem}));
    EXPECT_TRUE(scalpel::testing::gradcheck_tensors(
        "cross-attention params", [&] { return a.forward(x, mem, lengths); }, a.named_parameters(),
        GradcheckOptions().set_max_checks(150)));
  }
}

TEST(Seq2SeqGradcheck, DecoderBlock) {
  Generator gen(1);
  nn::DecoderBlock b(nn::DecoderBlockOptions(8, 2).d_ff(12), gen);
  const Tensor x = randn({2, 3, 8}, 4), mem = randn({2, 4, 8}, 5);
  const std::vector<int64_t> lengths{3, 4};
  EXPECT_TRUE(gradcheck("DecoderBlock input and memory",
                        [&](const auto& in) { return b.forward(in[0], in[1], lengths); }, {x, mem}));
  EXPECT_TRUE(scalpel::testing::gradcheck_tensors(
      "DecoderBlock params", [&] { return b.forward(x, mem, lengths); }, b.named_parameters(),
      GradcheckOptions().set_max_checks(60)));
}

TEST(Seq2SeqGradcheck, WholeModelLossSharedAndSeparateEmbeddings) {
  for (bool shared : {true, false}) {
    for (bool tied : {true, false}) {
      SCOPED_TRACE(std::string(shared ? "shared" : "separate") + (tied ? ", tied" : ", untied"));
      Generator gen(7);
      nn::Seq2Seq m(tiny(shared, tied), gen);
      const IndexTensor src = random_ids(2, 5, 13, 8), tin = random_ids(2, 4, 13, 9);
      IndexTensor tout = random_ids(2, 4, 13, 10);
      tout.data[7] = nn::Seq2Seq::kIgnoreTarget;  // a padded target
      EXPECT_TRUE(scalpel::testing::gradcheck_tensors(
          "Seq2Seq loss",
          [&] {
            return m.loss(src, {5, 3}, tin, tout);
          },
          m.named_parameters(), GradcheckOptions().set_max_checks(25)));
    }
  }
}

TEST(Seq2Seq, ParameterNamesFollowTheOptions) {
  Generator gen(1);
  nn::Seq2Seq shared(tiny(true, true), gen), separate(tiny(false, false), gen);
  auto names = [](nn::Module& m) {
    std::set<std::string> s;
    for (const auto& [n, p] : m.named_parameters()) s.insert(n);
    return s;
  };
  const auto a = names(shared), b = names(separate);
  EXPECT_TRUE(a.count("emb.weight") && !a.count("head.weight") && !a.count("src_emb.weight"));
  EXPECT_TRUE(b.count("src_emb.weight") && b.count("tgt_emb.weight") && b.count("head.weight") &&
              !b.count("emb.weight"));
  for (const char* n :
       {"enc_pos.weight", "dec_pos.weight", "encoder.0.attn.qkv.weight", "decoder.1.cross_attn.kv.weight",
        "decoder.1.cross_attn.q.bias", "decoder.0.ln3.weight", "enc_ln.weight", "dec_ln.bias"}) {
    EXPECT_TRUE(a.count(n)) << n;
  }
}

// Padded source positions hold arbitrary ids: the real rows' outputs must not depend on them.
TEST(Seq2Seq, PaddedSourcePositionsChangeNothing) {
  Generator gen(3);
  nn::Seq2Seq m(tiny(), gen);
  IndexTensor src = random_ids(2, 6, 13, 11);
  const IndexTensor tin = random_ids(2, 4, 13, 12);
  const std::vector<int64_t> lengths{6, 3};
  const Tensor a = m.forward(src, lengths, tin);
  for (int64_t t = 3; t < 6; ++t)
    src.data[static_cast<size_t>(6 + t)] = (src.data[static_cast<size_t>(6 + t)] + 5) % 13;
  const Tensor b = m.forward(src, lengths, tin);
  EXPECT_EQ(max_abs_diff(a, b), 0.0f);
  // ... and a row with the padding cut off entirely gives the same logits.
  IndexTensor row1(std::vector<int64_t>(src.data.begin() + 6, src.data.begin() + 9), {1, 3});
  IndexTensor tin1(std::vector<int64_t>(tin.data.begin() + 4, tin.data.end()), {1, 4});
  const Tensor c = m.forward(row1, {3}, tin1);
  EXPECT_LT(max_abs_diff(b.select(0, 1), c.select(0, 0)), 1e-5f);
  // Without the lengths the padding is attended to, and the output changes (the mask is in use).
  EXPECT_GT(max_abs_diff(m.forward(src, {}, tin).select(0, 1), c.select(0, 0)), 1e-4f);
}

TEST(Seq2Seq, LossIgnoresPaddedTargets) {
  Generator gen(4);
  nn::Seq2Seq m(tiny(), gen);
  const IndexTensor src = random_ids(1, 4, 13, 13);
  const IndexTensor tin = random_ids(1, 5, 13, 14);
  IndexTensor tout = random_ids(1, 5, 13, 15);
  for (int64_t t = 3; t < 5; ++t) tout.data[static_cast<size_t>(t)] = nn::Seq2Seq::kIgnoreTarget;
  const float padded = m.loss(src, {4}, tin, tout).item();
  IndexTensor tin3(std::vector<int64_t>(tin.data.begin(), tin.data.begin() + 3), {1, 3});
  IndexTensor tout3(std::vector<int64_t>(tout.data.begin(), tout.data.begin() + 3), {1, 3});
  EXPECT_NEAR(padded, m.loss(src, {4}, tin3, tout3).item(), 1e-6);
}

// decode_step at every position reproduces decode()'s logits of the whole sequence.
TEST(Seq2Seq, IncrementalDecodingEqualsFullDecoding) {
  Generator gen(5);
  nn::Seq2Seq m(tiny(false, false), gen);
  const IndexTensor src = random_ids(3, 5, 13, 16), tin = random_ids(3, 6, 13, 17);
  const std::vector<int64_t> lengths{5, 2, 4};
  NoGradGuard no_grad;
  const Tensor memory = m.encode(src, lengths);
  const Tensor full = m.decode(tin, memory, lengths);
  nn::Seq2SeqDecodeState st = m.start_decoding(memory, lengths, 6);
  for (int64_t t = 0; t < 6; ++t) {
    std::vector<int64_t> tok;
    for (int64_t b = 0; b < 3; ++b) tok.push_back(tin.data[static_cast<size_t>(b * 6 + t)]);
    const Tensor step = m.decode_step(tok, st);
    EXPECT_LT(max_abs_diff(step, full.select(1, t)), 2e-5f) << "position " << t;
  }
  EXPECT_THROW(m.decode_step({1, 2, 3}, st), std::invalid_argument);  // capacity 6 is used up
}

TEST(Seq2SeqDecode, CacheGivesTheSameTokensGreedyAndBeam) {
  Generator gen(6);
  nn::Seq2Seq m(tiny(), gen);
  const IndexTensor src = random_ids(3, 5, 11, 18);
  const std::vector<int64_t> lengths{5, 3, 4};
  for (int64_t beam : {1, 3}) {
    SCOPED_TRACE("beam " + std::to_string(beam));
    const auto o = nn::DecodeOptions(11, 12).beam(beam).max_len(10);
    auto no_cache = o;
    const auto with = nn::translate(m, src, lengths, o),
               without = nn::translate(m, src, lengths, no_cache.cache(false));
    ASSERT_EQ(with.size(), 3u);
    size_t longest = 0;
    for (const auto& h : with) longest = std::max(longest, h.tokens.size());
    EXPECT_GE(longest, 3u) << "the comparison needs sentences of several tokens";
    for (size_t b = 0; b < with.size(); ++b) {
      EXPECT_EQ(with[b].tokens, without[b].tokens) << "row " << b;
      EXPECT_NEAR(with[b].log_prob, without[b].log_prob, 1e-4) << "row " << b;
    }
  }
}

TEST(Seq2SeqDecode, BeamOfOneIsGreedyAndScoresAreTheSequenceLogProbability) {
  Generator gen(8);
  nn::Seq2Seq m(tiny(), gen);
  const IndexTensor src = random_ids(2, 4, 11, 19);
  const auto o = nn::DecodeOptions(11, 12).max_len(8);
  const auto greedy = nn::greedy_decode(m, src, {}, o);
  const auto beam1 = nn::beam_decode(m, src, {}, o);
  for (size_t b = 0; b < 2; ++b) {
    EXPECT_EQ(greedy[b].tokens, beam1[b].tokens);
    EXPECT_NEAR(greedy[b].log_prob, beam1[b].log_prob, 1e-9);
    // Rescore the decoded sequence with one full forward: the sum of its token log-probabilities.
    std::vector<int64_t> in{11}, out;
    for (int64_t t : greedy[b].tokens) {
      in.push_back(t);
      out.push_back(t);
    }
    if (greedy[b].finished)
      out.push_back(12);
    else
      in.pop_back();
    IndexTensor s(std::vector<int64_t>(src.data.begin() + 4 * b, src.data.begin() + 4 * (b + 1)), {1, 4});
    NoGradGuard no_grad;
    const Tensor lp = log_softmax(m.forward(s, {}, IndexTensor(in, {1, static_cast<int64_t>(in.size())})), -1);
    double sum = 0.0;
    for (size_t t = 0; t < out.size(); ++t) sum += lp.select(1, static_cast<int64_t>(t)).select(1, out[t]).item();
    EXPECT_NEAR(greedy[b].log_prob, sum, 1e-4);
  }
}

// With α = 0 (raw sums) and a beam of 13² = every two-token prefix, the first two steps are
// exhaustive and the last keeps the best extensions, so the best hypothesis (EOS-ended or cut at
// max_len) is at least as likely as the greedy one.
TEST(Seq2SeqDecode, WiderBeamFindsAtLeastAsLikelyASequenceAsGreedy) {
  Generator gen(9);
  nn::Seq2Seq m(tiny(), gen);
  const IndexTensor src = random_ids(4, 5, 11, 20);
  const auto o = nn::DecodeOptions(11, 12).max_len(3).length_penalty(0.0);
  auto wide = o;
  const auto g = nn::translate(m, src, {}, o), b = nn::translate(m, src, {}, wide.beam(13 * 13));
  for (size_t i = 0; i < g.size(); ++i) EXPECT_GE(b[i].log_prob, g[i].log_prob - 1e-9) << "row " << i;
}

TEST(Seq2SeqDecode, BadOptionsNameWhatIsWrong) {
  Generator gen(1);
  nn::Seq2Seq m(tiny(), gen);
  const IndexTensor src = random_ids(1, 3, 11, 21);
  try {
    nn::translate(m, src, {}, nn::DecodeOptions(11, 12).max_len(50));
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("max_len 50"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nn::translate(m, src, {}, nn::DecodeOptions(11, 13)), std::invalid_argument);
  EXPECT_THROW(nn::translate(m, src, {}, nn::DecodeOptions(11, 12).beam(0)), std::invalid_argument);
  EXPECT_THROW(m.forward(src, {}, IndexTensor({1, 2, 99}, {1, 3})), std::invalid_argument);
}
