#include "nn/seq2seq_decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace scalpel {
namespace nn {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Feeds one token per row and returns the next position's logits [R, V], with or without the
// key/value cache; rows can be reordered (beam search) between steps.
class Stepper {
 public:
  Stepper(Seq2Seq& model, Tensor memory, std::vector<int64_t> lengths, int64_t capacity, bool cache)
      : model_(model), cache_(cache), memory_(std::move(memory)), lengths_(std::move(lengths)) {
    if (cache_) state_ = model_.start_decoding(memory_, lengths_, capacity);
    prefix_.resize(static_cast<size_t>(memory_.size(0)));
  }

  Tensor step(const std::vector<int64_t>& tokens) {
    if (cache_) return model_.decode_step(tokens, state_).contiguous();
    const int64_t R = static_cast<int64_t>(tokens.size());
    for (int64_t r = 0; r < R; ++r) prefix_[static_cast<size_t>(r)].push_back(tokens[static_cast<size_t>(r)]);
    const int64_t T = static_cast<int64_t>(prefix_.front().size());
    std::vector<int64_t> ids;
    ids.reserve(static_cast<size_t>(R * T));
    for (const auto& p : prefix_) ids.insert(ids.end(), p.begin(), p.end());
    Tensor logits = model_.decode(IndexTensor(ids, {R, T}), memory_, lengths_);
    return logits.narrow(1, T - 1, 1).reshape({R, model_.options().vocab()}).contiguous();
  }

  void reorder(const std::vector<int64_t>& rows) {
    if (cache_) {
      state_.reorder(IndexTensor(rows));
      return;
    }
    std::vector<std::vector<int64_t>> p(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) p[i] = prefix_[static_cast<size_t>(rows[i])];
    prefix_ = std::move(p);
  }

 private:
  Seq2Seq& model_;
  bool cache_;
  Tensor memory_;
  std::vector<int64_t> lengths_;
  Seq2SeqDecodeState state_;
  std::vector<std::vector<int64_t>> prefix_;  // without the cache: every row's tokens so far
};

// log-softmax of one row of V logits, in double.
void log_softmax_row(const float* x, int64_t V, std::vector<double>& out) {
  out.resize(static_cast<size_t>(V));
  double mx = x[0];
  for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(x[v]));
  double s = 0.0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(x[v]) - mx);
  const double lse = mx + std::log(s);
  for (int64_t v = 0; v < V; ++v) out[static_cast<size_t>(v)] = static_cast<double>(x[v]) - lse;
}

void check_options(const Seq2Seq& model, const IndexTensor& src, const DecodeOptions& o) {
  const int64_t V = model.options().vocab();
  if (o.bos() < 0 || o.bos() >= V || o.eos() < 0 || o.eos() >= V) {
    throw std::invalid_argument("decode: bos " + std::to_string(o.bos()) + " / eos " + std::to_string(o.eos()) +
                                " must be token ids 0.." + std::to_string(V - 1));
  }
  if (o.max_len() < 1 || o.max_len() > model.options().max_len()) {
    throw std::invalid_argument("decode: max_len " + std::to_string(o.max_len()) + ", expected 1.." +
                                std::to_string(model.options().max_len()) + " (the model's max_len)");
  }
  if (o.beam() < 1) throw std::invalid_argument("decode: beam " + std::to_string(o.beam()) + ", expected >= 1");
  if (src.dim() != 2 || src.shape[0] < 1) {
    throw std::invalid_argument("decode: source ids have shape " + shape_str(src.shape) + ", expected [B, S], B >= 1");
  }
}

double length_normalised(double log_prob, size_t n, double alpha) {
  return alpha == 0.0 ? log_prob : log_prob / std::pow((5.0 + static_cast<double>(n)) / 6.0, alpha);
}

}  // namespace

std::vector<Hypothesis> greedy_decode(Seq2Seq& model, const IndexTensor& src, const std::vector<int64_t>& src_lengths,
                                      const DecodeOptions& options) {
  check_options(model, src, options);
  NoGradGuard no_grad;
  const int64_t B = src.shape[0], V = model.options().vocab();
  Tensor memory = model.encode(src, src_lengths);
  Stepper stepper(model, memory, src_lengths, options.max_len(), options.cache());
  std::vector<Hypothesis> hyps(static_cast<size_t>(B));
  std::vector<int64_t> tokens(static_cast<size_t>(B), options.bos());
  std::vector<double> lp;
  for (int64_t t = 0; t < options.max_len(); ++t) {
    Tensor logits = stepper.step(tokens);
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      Hypothesis& h = hyps[static_cast<size_t>(b)];
      if (h.finished) continue;
      log_softmax_row(logits.data() + b * V, V, lp);
      const int64_t best = std::max_element(lp.begin(), lp.end()) - lp.begin();  // first maximum
      h.log_prob += lp[static_cast<size_t>(best)];
      if (best == options.eos()) {
        h.finished = true;
      } else {
        h.tokens.push_back(best);
        all_done = false;
      }
      tokens[static_cast<size_t>(b)] = best;
    }
    if (all_done) break;
  }
  return hyps;
}

std::vector<Hypothesis> beam_decode(Seq2Seq& model, const IndexTensor& src, const std::vector<int64_t>& src_lengths,
                                    const DecodeOptions& options) {
  check_options(model, src, options);
  NoGradGuard no_grad;
  const int64_t B = src.shape[0], V = model.options().vocab(), K = options.beam(), R = B * K;
  const double alpha = options.length_penalty();
  Tensor memory = model.encode(src, src_lengths);
  // Row r = b * K + k holds beam k of sentence b.
  std::vector<int64_t> expand(static_cast<size_t>(R)), lengths;
  for (int64_t r = 0; r < R; ++r) expand[static_cast<size_t>(r)] = r / K;
  if (!src_lengths.empty()) {
    for (int64_t r = 0; r < R; ++r) lengths.push_back(src_lengths.at(static_cast<size_t>(r / K)));
  }
  Stepper stepper(model, index_select(memory, 0, IndexTensor(expand)), lengths, options.max_len(), options.cache());

  std::vector<double> score(static_cast<size_t>(R), kNegInf);
  for (int64_t b = 0; b < B; ++b) score[static_cast<size_t>(b * K)] = 0.0;  // one live beam to start
  std::vector<std::vector<int64_t>> seq(static_cast<size_t>(R));
  std::vector<std::vector<Hypothesis>> finished(static_cast<size_t>(B));
  std::vector<bool> done(static_cast<size_t>(B), false);
  std::vector<int64_t> tokens(static_cast<size_t>(R), options.bos());

  struct Candidate {
    double score;
    int64_t k, v;
  };
  std::vector<Candidate> cand;
  std::vector<double> lp;
  for (int64_t t = 0; t < options.max_len(); ++t) {
    Tensor logits = stepper.step(tokens);
    std::vector<int64_t> rows(static_cast<size_t>(R)), next_tokens(static_cast<size_t>(R), options.eos());
    std::vector<double> next_score(static_cast<size_t>(R), kNegInf);
    std::vector<std::vector<int64_t>> next_seq(static_cast<size_t>(R));
    const bool last = t + 1 == options.max_len();
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t k = 0; k < K; ++k) rows[static_cast<size_t>(b * K + k)] = b * K + k;
      if (done[static_cast<size_t>(b)]) continue;
      cand.clear();
      for (int64_t k = 0; k < K; ++k) {
        const int64_t r = b * K + k;
        if (score[static_cast<size_t>(r)] == kNegInf) continue;
        log_softmax_row(logits.data() + r * V, V, lp);
        for (int64_t v = 0; v < V; ++v)
          cand.push_back({score[static_cast<size_t>(r)] + lp[static_cast<size_t>(v)], k, v});
      }
      const size_t top = std::min(cand.size(), static_cast<size_t>(2 * K));
      std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(top), cand.end(),
                        [](const Candidate& a, const Candidate& c) {
                          if (a.score != c.score) return a.score > c.score;
                          return a.k != c.k ? a.k < c.k : a.v < c.v;
                        });
      auto& fin = finished[static_cast<size_t>(b)];
      int64_t live = 0;
      for (size_t i = 0; i < top && live < K && static_cast<int64_t>(fin.size()) < K; ++i) {
        const Candidate& c = cand[i];
        const int64_t from = b * K + c.k;
        if (c.v == options.eos()) {
          fin.push_back({seq[static_cast<size_t>(from)], c.score, true});
          continue;
        }
        const int64_t r = b * K + live++;
        rows[static_cast<size_t>(r)] = from;
        next_tokens[static_cast<size_t>(r)] = c.v;
        next_score[static_cast<size_t>(r)] = c.score;
        next_seq[static_cast<size_t>(r)] = seq[static_cast<size_t>(from)];
        next_seq[static_cast<size_t>(r)].push_back(c.v);
      }
      if (static_cast<int64_t>(fin.size()) >= K || last) {
        done[static_cast<size_t>(b)] = true;
        for (int64_t k = 0; k < live && last && static_cast<int64_t>(fin.size()) < K; ++k) {
          const size_t r = static_cast<size_t>(b * K + k);
          fin.push_back({next_seq[r], next_score[r], false});
        }
      }
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    stepper.reorder(rows);
    tokens = std::move(next_tokens);
    score = std::move(next_score);
    seq = std::move(next_seq);
  }
  std::vector<Hypothesis> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto& fin = finished[static_cast<size_t>(b)];
    double best = kNegInf;
    for (const Hypothesis& h : fin) {
      const double s = length_normalised(h.log_prob, h.tokens.size() + (h.finished ? 1 : 0), alpha);
      if (s > best) {
        best = s;
        out[static_cast<size_t>(b)] = h;
      }
    }
  }
  return out;
}

std::vector<Hypothesis> translate(Seq2Seq& model, const IndexTensor& src, const std::vector<int64_t>& src_lengths,
                                  const DecodeOptions& options) {
  return options.beam() == 1 ? greedy_decode(model, src, src_lengths, options)
                             : beam_decode(model, src, src_lengths, options);
}

}  // namespace nn
}  // namespace scalpel
