#include "data/seq2seq_batch.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "core/random.h"

namespace scalpel {
namespace data {

namespace {

// Fisher–Yates with the project's generator (std::shuffle's result differs between libraries).
template <class T>
void shuffle_with(std::vector<T>& v, Generator& gen) {
  for (size_t i = v.size(); i > 1; --i)
    std::swap(v[i - 1], v[static_cast<size_t>(gen.randint(static_cast<int64_t>(i)))]);
}

int64_t positions(const std::string& s) { return static_cast<int64_t>(s.size()) + 1; }  // + EOS or BOS

}  // namespace

std::vector<int64_t> ByteVocab::encode(const std::string& text) {
  std::vector<int64_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteVocab::decode(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) {
    if (id >= 0 && id < 256) s.push_back(static_cast<char>(static_cast<unsigned char>(id)));
  }
  return s;
}

Seq2SeqBatch make_seq2seq_batch(const std::vector<SentencePair>& pairs, const std::vector<size_t>& indices) {
  if (indices.empty()) throw std::invalid_argument("make_seq2seq_batch: no pairs (empty index list)");
  int64_t S = 0, T = 0;
  for (size_t i : indices) {
    if (i >= pairs.size()) {
      throw std::invalid_argument("make_seq2seq_batch: pair index " + std::to_string(i) + " out of range (" +
                                  std::to_string(pairs.size()) + " pairs)");
    }
    S = std::max(S, positions(pairs[i].source));
    T = std::max(T, positions(pairs[i].target));
  }
  const int64_t B = static_cast<int64_t>(indices.size());
  Seq2SeqBatch b;
  b.pairs = indices;
  std::vector<int64_t> src(static_cast<size_t>(B * S), ByteVocab::kPad),
      tin(static_cast<size_t>(B * T), ByteVocab::kPad), tout(static_cast<size_t>(B * T), Seq2SeqBatch::kIgnoreTarget);
  for (int64_t r = 0; r < B; ++r) {
    const SentencePair& p = pairs[indices[static_cast<size_t>(r)]];
    const std::vector<int64_t> s = ByteVocab::encode(p.source), t = ByteVocab::encode(p.target);
    int64_t* sr = src.data() + r * S;
    std::copy(s.begin(), s.end(), sr);
    sr[s.size()] = ByteVocab::kEos;
    b.src_lengths.push_back(static_cast<int64_t>(s.size()) + 1);
    int64_t* ti = tin.data() + r * T;
    int64_t* to = tout.data() + r * T;
    ti[0] = ByteVocab::kBos;
    std::copy(t.begin(), t.end(), ti + 1);
    std::copy(t.begin(), t.end(), to);
    to[t.size()] = ByteVocab::kEos;
    b.target_tokens += static_cast<int64_t>(t.size()) + 1;
  }
  b.src = IndexTensor(std::move(src), {B, S});
  b.tgt_in = IndexTensor(std::move(tin), {B, T});
  b.tgt_out = IndexTensor(std::move(tout), {B, T});
  return b;
}

LengthFiltered filter_by_length(const std::vector<SentencePair>& pairs, int64_t max_tokens) {
  LengthFiltered f;
  for (const SentencePair& p : pairs) {
    if (positions(p.source) <= max_tokens && positions(p.target) <= max_tokens) {
      f.pairs.push_back(p);
    } else {
      ++f.dropped;
    }
  }
  return f;
}

std::vector<std::vector<size_t>> bucket_batches(const std::vector<SentencePair>& pairs, const BucketOptions& o) {
  if (o.batch_size_ < 1 || o.max_tokens_ < 0 || o.window_ < 1) {
    throw std::invalid_argument("bucket_batches: batch_size " + std::to_string(o.batch_size_) + ", max_tokens " +
                                std::to_string(o.max_tokens_) + ", window " + std::to_string(o.window_) +
                                "; expected batch_size >= 1, max_tokens >= 0, window >= 1");
  }
  Generator gen(o.seed_);
  std::vector<size_t> order(pairs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  shuffle_with(order, gen);
  auto len = [&](size_t i) { return std::max(positions(pairs[i].source), positions(pairs[i].target)); };
  const size_t window = static_cast<size_t>(o.window_ * o.batch_size_);
  std::vector<std::vector<size_t>> batches;
  for (size_t w = 0; w < order.size(); w += window) {
    const auto first = order.begin() + static_cast<std::ptrdiff_t>(w);
    const auto last = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), w + window));
    std::stable_sort(first, last, [&](size_t a, size_t b) { return len(a) < len(b); });
    std::vector<size_t> cur;
    int64_t longest = 0;
    for (auto it = first; it != last; ++it) {
      const int64_t l = std::max(longest, len(*it));
      const bool full = static_cast<int64_t>(cur.size()) == o.batch_size_ ||
                        (o.max_tokens_ > 0 && !cur.empty() && l * static_cast<int64_t>(cur.size() + 1) > o.max_tokens_);
      if (full) {
        batches.push_back(std::move(cur));
        cur.clear();
        longest = 0;
      }
      cur.push_back(*it);
      longest = std::max(longest, len(*it));
    }
    if (!cur.empty()) batches.push_back(std::move(cur));
  }
  shuffle_with(batches, gen);
  return batches;
}

PairBatchStream::PairBatchStream(const std::vector<SentencePair>& pairs, const BucketOptions& options)
    : pairs_(pairs), options_(options) {
  if (pairs.empty()) throw std::invalid_argument("PairBatchStream: no sentence pairs");
  if (options.shard_count_ < 1 || options.shard_rank_ < 0 || options.shard_rank_ >= options.shard_count_) {
    throw std::invalid_argument("PairBatchStream: shard " + std::to_string(options.shard_rank_) + " of " +
                                std::to_string(options.shard_count_) + " is out of range (expected 0 <= rank < count)");
  }
  start_epoch(0);
}

void PairBatchStream::start_epoch(int64_t epoch) {
  BucketOptions o = options_;
  o.seed_ = options_.seed_ + static_cast<uint64_t>(epoch);
  batches_ = bucket_batches(pairs_, o);
  epoch_ = epoch;
  position_ = 0;
}

Seq2SeqBatch PairBatchStream::next() {
  if (position_ >= static_cast<int64_t>(batches_.size())) start_epoch(epoch_ + 1);
  const std::vector<size_t>& all = batches_[static_cast<size_t>(position_++)];
  if (options_.shard_count_ <= 1) {
    Seq2SeqBatch b = make_seq2seq_batch(pairs_, all);
    b.global_target_tokens = b.target_tokens;
    return b;
  }
  int64_t global_tokens = 0;
  for (size_t i : all) global_tokens += positions(pairs_[i].target);
  const int64_t n = static_cast<int64_t>(all.size());
  const int64_t lo = n * options_.shard_rank_ / options_.shard_count_;
  const int64_t hi = n * (options_.shard_rank_ + 1) / options_.shard_count_;
  Seq2SeqBatch b;
  if (hi > lo) b = make_seq2seq_batch(pairs_, std::vector<size_t>(all.begin() + lo, all.begin() + hi));
  b.global_target_tokens = global_tokens;
  return b;
}

StateDict PairBatchStream::state_dict() const {
  StateDict s;
  s.set_int("epoch", epoch_);
  s.set_int("position", position_);
  return s;
}

void PairBatchStream::load_state_dict(const StateDict& state) {
  const int64_t epoch = state.get_int("epoch"), position = state.get_int("position");
  if (epoch < 0 || position < 0) {
    throw std::invalid_argument("PairBatchStream: checkpoint holds epoch " + std::to_string(epoch) + ", position " +
                                std::to_string(position) + "; expected both >= 0");
  }
  start_epoch(epoch);
  if (position > static_cast<int64_t>(batches_.size())) {
    throw std::invalid_argument("PairBatchStream: checkpoint position " + std::to_string(position) + " beyond the " +
                                std::to_string(batches_.size()) +
                                " batches of its epoch (were the pairs or the batch options changed?)");
  }
  position_ = position;
}

}  // namespace data
}  // namespace scalpel
