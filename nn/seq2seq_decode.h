// Greedy and beam-search decoding for nn::Seq2Seq.
//
//   auto out = nn::translate(model, src, src_lengths,
//                            nn::DecodeOptions(kBos, kEos).beam(4).length_penalty(0.6).max_len(80));
//   // out[b]: the target ids of source row b, without BOS and EOS
//
// With `cache` (the default) every new token runs the decoder on that one position against the
// cached keys and values of the earlier positions and the encoder memory projected once
// (Seq2Seq::decode_step): O(t) work for token t. Without it the whole prefix is decoded again for
// every token (O(t²), the reference the tests hold the cache to: the same tokens either way).
//
// Beam search keeps `beam` live hypotheses per sentence, ranks by the sum of token log-probabilities
// divided by the GNMT length penalty ((5 + n) / 6)^α (n = tokens including EOS; α = 0 ranks by the
// raw sum), moves a hypothesis that emits EOS to the finished list, and stops a sentence once it
// has `beam` finished hypotheses or reaches max_len (live ones then count as finished). Ties go
// to the lower beam index, then the lower token id, so decoding is deterministic. beam = 1 is
// greedy decoding.
#pragma once

#include <vector>

#include "nn/seq2seq.h"

namespace scalpel {
namespace nn {

struct DecodeOptions {
  DecodeOptions(int64_t bos, int64_t eos) : bos_(bos), eos_(eos) {}
  SCALPEL_ARG(int64_t, bos);
  SCALPEL_ARG(int64_t, eos);
  SCALPEL_ARG(int64_t, max_len) = 64;         // generated tokens at most, EOS included
  SCALPEL_ARG(int64_t, beam) = 1;             // 1 = greedy
  SCALPEL_ARG(double, length_penalty) = 0.6;  // GNMT α (beam search only)
  SCALPEL_ARG(bool, cache) = true;            // false: re-decode the whole prefix per token
};

// One decoded sentence: its tokens (no BOS, no EOS) and its score (sum of log-probabilities,
// EOS included when it was emitted).
struct Hypothesis {
  std::vector<int64_t> tokens;
  double log_prob = 0.0;
  bool finished = false;  // ended with EOS (else cut at max_len)
};

// src [B, S], src_lengths [B] (empty = all S) -> one hypothesis per row. Runs under no-grad.
std::vector<Hypothesis> greedy_decode(Seq2Seq& model, const IndexTensor& src, const std::vector<int64_t>& src_lengths,
                                      const DecodeOptions& options);
std::vector<Hypothesis> beam_decode(Seq2Seq& model, const IndexTensor& src, const std::vector<int64_t>& src_lengths,
                                    const DecodeOptions& options);
// greedy_decode when options.beam() == 1, else beam_decode.
std::vector<Hypothesis> translate(Seq2Seq& model, const IndexTensor& src, const std::vector<int64_t>& src_lengths,
                                  const DecodeOptions& options);

}  // namespace nn
}  // namespace scalpel
