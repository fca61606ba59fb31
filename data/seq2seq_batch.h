// Batches of variable-length sentence pairs for sequence-to-sequence training (the translation
// study): the byte-level vocabulary, padding, length filtering and length bucketing.
//
//   auto kept = data::filter_by_length(corpus.pairs, /*max_tokens=*/95);     // report kept.dropped
//   auto batches = data::bucket_batches(kept.pairs, data::BucketOptions().max_tokens(2048).seed(1));
//   data::Seq2SeqBatch b = data::make_seq2seq_batch(kept.pairs, batches[0]);
//   Tensor loss = model.loss(b.src, b.src_lengths, b.tgt_in, b.tgt_out);
//
// Tokens are the UTF-8 bytes of a sentence (0..255) and three specials: PAD 256, BOS 257, EOS 258
// (vocabulary 259). A batch holds src [B, S] (bytes, then EOS, then PAD), src_lengths, tgt_in [B, T]
// (BOS, then the target's bytes, then PAD) and tgt_out [B, T] (the bytes, then EOS, then
// kIgnoreTarget), so position t of tgt_in predicts position t of tgt_out. Bucketing sorts pairs
// by length inside windows of `window` batches (pairs shuffled first), cuts batches of at most
// batch_size pairs and max_tokens padded tokens (max(S, T) × rows), then shuffles the batch order,
// all from `seed`: the same seed gives the same batches, and little of a batch is padding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/state_dict.h"
#include "core/tensor.h"
#include "data/parallel.h"
#include "data/text.h"

namespace scalpel {
namespace data {

struct ByteVocab {
  static constexpr int64_t kPad = 256, kBos = 257, kEos = 258, kSize = 259;
  static std::vector<int64_t> encode(const std::string& text);
  // Bytes back to text; specials are dropped (a decoder's output can hold PAD or BOS).
  static std::string decode(const std::vector<int64_t>& ids);
};

struct Seq2SeqBatch {
  static constexpr int64_t kIgnoreTarget = data::kIgnoreTarget;  // == nn::Seq2Seq::kIgnoreTarget
  IndexTensor src, tgt_in, tgt_out;
  std::vector<int64_t> src_lengths;  // real source tokens per row, EOS included
  std::vector<size_t> pairs;         // which pairs, in row order
  int64_t target_tokens = 0;         // non-ignored entries of tgt_out
  // Sharded (BucketOptions::shard): the target tokens of the whole batch over every rank (equal to
  // target_tokens without sharding). A rank's part can be empty (no rows) when the batch has
  // fewer pairs than ranks.
  int64_t global_target_tokens = 0;
  bool empty() const { return pairs.empty(); }
};

// pairs[indices[i]] become row i.
Seq2SeqBatch make_seq2seq_batch(const std::vector<SentencePair>& pairs, const std::vector<size_t>& indices);

struct LengthFiltered {
  std::vector<SentencePair> pairs;
  int64_t dropped = 0;
};
// Keeps the pairs whose source and target both fit in max_tokens positions with their special
// token (bytes + 1 <= max_tokens).
LengthFiltered filter_by_length(const std::vector<SentencePair>& pairs, int64_t max_tokens);

struct BucketOptions {
  BucketOptions& batch_size(int64_t v) {
    batch_size_ = v;
    return *this;
  }
  BucketOptions& max_tokens(int64_t v) {
    max_tokens_ = v;
    return *this;
  }
  BucketOptions& window(int64_t v) {
    window_ = v;
    return *this;
  }
  BucketOptions& seed(uint64_t v) {
    seed_ = v;
    return *this;
  }
  int64_t batch_size_ = 64;  // pairs per batch at most
  int64_t max_tokens_ = 0;   // padded tokens per batch at most (0 = no limit)
  int64_t window_ = 100;     // batches per sorting window
  // Data parallel: this rank takes pairs [⌊n·r/N⌋, ⌊n·(r+1)/N⌋) of every batch of n pairs; the
  // batches themselves (and so the stream's state) are those of one process.
  BucketOptions& shard(int64_t rank, int64_t count) {
    shard_rank_ = rank;
    shard_count_ = count;
    return *this;
  }
  uint64_t seed_ = 0;
  int64_t shard_rank_ = 0, shard_count_ = 1;
};
// Index lists, one per batch, covering every pair exactly once.
std::vector<std::vector<size_t>> bucket_batches(const std::vector<SentencePair>& pairs, const BucketOptions& options);

// An endless stream of batches over `pairs`: epoch e is bucket_batches(pairs, options) with seed
// options.seed + e, so the position (epoch, batch) is the whole state and a resumed stream
// continues with exactly the batches the uninterrupted one would have drawn.
class PairBatchStream {
 public:
  // `pairs` must outlive the stream.
  PairBatchStream(const std::vector<SentencePair>& pairs, const BucketOptions& options);
  Seq2SeqBatch next();
  int64_t epoch() const { return epoch_; }
  StateDict state_dict() const;  // "epoch", "position"
  void load_state_dict(const StateDict& state);

 private:
  void start_epoch(int64_t epoch);
  const std::vector<SentencePair>& pairs_;
  BucketOptions options_;
  std::vector<std::vector<size_t>> batches_;
  int64_t epoch_ = -1, position_ = 0;
};

}  // namespace data
}  // namespace scalpel
