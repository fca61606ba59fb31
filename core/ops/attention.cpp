// scaled_dot_product_attention: fused softmax(q kᵀ * scale + causal mask) v, forward and backward
// side by side.
//
// q, k, v are made contiguous and viewed as B*H independent problems. Per problem:
//   forward   P [Tq, Tk] = q kᵀ * scale (sgemm), masked row softmax in place, out = P v (sgemm)
//   backward  dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ⊙ (dP - rowsum(dP ⊙ P)),
//             dQ = scale * dS K,  dK = scale * dSᵀ Q          (all sgemm; beta = 1 accumulates)
// Masked entries are never exponentiated: a causal row i only reads keys 0..i (key 0 is always
// visible), padded keys (index >= key_lengths[b], for encoder padding in cross-attention) are
// masked the same way, and masked probabilities are exactly 0, so neither direction can produce NaN. The
// probabilities P are saved for backward ([B, H, Tq, Tk], the same memory a composite of matmul and
// softmax would keep). Problems run one per OpenMP thread (each sgemm single-threaded) when there
// are at least as many problems as threads, otherwise in turn with multi-threaded sgemm. The
// schedule depends only on the shapes and the thread count, so results are reproducible for a
// given thread count.

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/kernels/gemm.h"
#include "core/kernels/loops.h"
#include "core/kernels/sums.h"
#include "core/kernels/vmath.h"
#include "core/ops.h"

namespace scalpel {

namespace {

struct AttnGeom {
  int64_t BH, H, Tq, Tk, D, Dv;
  bool causal;
  float scale;
  std::shared_ptr<const std::vector<int64_t>> key_len;  // per batch element, or null: every key
};

// Runs f(bh) for every problem: one per thread when there are enough problems, else serially.
template <class F>
void for_each_problem(int64_t n, F&& f) {
  if (n >= num_threads()) {
    parallel_for(n, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) f(b);
    });
  } else {
    for (int64_t b = 0; b < n; ++b) f(b);
  }
}

// Number of visible keys of query row i of problem bh (causal mask, then the key padding).
inline int64_t visible(const AttnGeom& g, int64_t bh, int64_t i) {
  const int64_t n = g.causal ? std::min(g.Tk, i + 1) : g.Tk;
  return g.key_len ? std::min(n, (*g.key_len)[static_cast<size_t>(bh / g.H)]) : n;
}

// p [Tq, Tk] holds scaled scores; replaces each row by its masked softmax (masked entries 0).
void masked_softmax_rows(float* p, const AttnGeom& g, int64_t bh) {
  for (int64_t i = 0; i < g.Tq; ++i) {
    float* row = p + i * g.Tk;
    const int64_t n = visible(g, bh, i);
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) m = std::max(m, row[j]);
    if (!std::isfinite(m)) m = 0.0f;  // all -inf (or a +inf): let exp() decide, as softmax() does
    for (int64_t j = 0; j < n; ++j) row[j] = kernels::exp_approx(row[j] - m);
    const float inv = static_cast<float>(1.0 / kernels::row_sum(row, n));
    for (int64_t j = 0; j < n; ++j) row[j] *= inv;
    for (int64_t j = n; j < g.Tk; ++j) row[j] = 0.0f;
  }
}

void check_attention_args(const Tensor& q, const Tensor& k, const Tensor& v) {
  const char* names[3] = {"q", "k", "v"};
  const Tensor* ts[3] = {&q, &k, &v};
  for (int i = 0; i < 3; ++i) {
    if (!ts[i]->defined()) {
      throw std::invalid_argument(std::string("scaled_dot_product_attention: ") + names[i] + " is undefined");
    }
    if (ts[i]->dim() != 4) {
      throw std::invalid_argument(std::string("scaled_dot_product_attention: ") + names[i] +
                                  " must be 4-D [B, H, T, D], got " + shape_str(ts[i]->shape()) +
                                  " (hint: reshape [B, T, H*D] to [B, T, H, D] and permute to [B, H, T, D])");
    }
  }
  const std::string shapes =
      "q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + ", v " + shape_str(v.shape());
  if (q.size(0) != k.size(0) || q.size(0) != v.size(0) || q.size(1) != k.size(1) || q.size(1) != v.size(1)) {
    throw std::invalid_argument("scaled_dot_product_attention: batch and head dims must agree: " + shapes);
  }
  if (q.size(3) != k.size(3)) {
    throw std::invalid_argument("scaled_dot_product_attention: q and k must have the same feature dim D: " + shapes);
  }
  if (k.size(2) != v.size(2)) {
    throw std::invalid_argument("scaled_dot_product_attention: k and v must have the same length Tk: " + shapes);
  }
  if (k.size(2) == 0 || q.size(3) == 0) {
    throw std::invalid_argument("scaled_dot_product_attention: need at least one key and D >= 1: " + shapes);
  }
}

// The backward as recorded ops, for create_graph sweeps: the probabilities recomputed with history
// (masked keys get -inf, so their probability and every gradient through them is exactly 0),
//   dV = Pᵀ dO, dS = P ⊙ (dO Vᵀ - rowsum(P ⊙ dO Vᵀ)), dQ = scale dS K, dK = scale dSᵀ Q.
void attention_backward_graph(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const AttnGeom& g,
                              GradSink& s) {
  if (g.Tq == 0 || g.BH == 0) {
    for (size_t i = 0; i < 3; ++i) {
      if (s.needs(i)) s.add(i, Tensor::zeros(s.input_shape(i)));
    }
    return;
  }
  Tensor mask = Tensor::zeros({q.size(0), q.size(1), g.Tq, g.Tk});
  for (int64_t b = 0; b < g.BH; ++b) {
    for (int64_t i = 0; i < g.Tq; ++i) {
      float* row = mask.data() + (b * g.Tq + i) * g.Tk;
      for (int64_t j = visible(g, b, i); j < g.Tk; ++j) row[j] = -std::numeric_limits<float>::infinity();
    }
  }
  const Tensor p = softmax(add(mul(matmul(q, k.transpose(-2, -1)), g.scale), mask), -1);
  if (s.needs(2)) s.add(2, matmul(p.transpose(-2, -1), dout));
  if (!s.needs(0) && !s.needs(1)) return;
  const Tensor dp = matmul(dout, v.transpose(-2, -1));
  const Tensor ds = mul(p, sub(dp, sum(mul(dp, p), {-1}, true)));
  if (s.needs(0)) s.add(0, mul(matmul(ds, k), g.scale));
  if (s.needs(1)) s.add(1, mul(matmul(ds.transpose(-2, -1), q), g.scale));
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  return scaled_dot_product_attention(q, k, v, causal, {});
}

// q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv], key_lengths [B] or empty -> out [B, H, Tq, Dv]
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    const std::vector<int64_t>& key_lengths) {
  check_attention_args(q, k, v);
  AttnGeom g{};
  if (!key_lengths.empty()) {
    if (static_cast<int64_t>(key_lengths.size()) != q.size(0)) {
      throw std::invalid_argument("scaled_dot_product_attention: key_lengths has " +
                                  std::to_string(key_lengths.size()) + " entries, expected one per batch element (" +
                                  std::to_string(q.size(0)) + ")");
    }
    for (size_t b = 0; b < key_lengths.size(); ++b) {
      if (key_lengths[b] < 1 || key_lengths[b] > k.size(2)) {
        throw std::invalid_argument("scaled_dot_product_attention: key_lengths[" + std::to_string(b) + "] is " +
                                    std::to_string(key_lengths[b]) + ", expected 1 to Tk = " +
                                    std::to_string(k.size(2)) + " (a sequence needs at least one visible key)");
      }
    }
    g.key_len = std::make_shared<const std::vector<int64_t>>(key_lengths);
  }
  g.H = q.size(1);
  g.BH = q.size(0) * q.size(1);
  g.Tq = q.size(2);
  g.Tk = k.size(2);
  g.D = q.size(3);
  g.Dv = v.size(3);
  g.causal = causal;
  g.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(g.D)));
  const Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  Tensor probs = make_tensor({q.size(0), q.size(1), g.Tq, g.Tk});
  Tensor out = make_tensor({q.size(0), q.size(1), g.Tq, g.Dv});
  const float *pq = qc.data(), *pk = kc.data(), *pv = vc.data();
  float *pp = probs.data(), *po = out.data();
  if (g.Tq > 0) {
    for_each_problem(g.BH, [&](int64_t b) {
      float* P = pp + b * g.Tq * g.Tk;
      // P = q kᵀ * scale : [Tq, D] · [D, Tk]
      kernels::sgemm(false, true, g.Tq, g.Tk, g.D, g.scale, pq + b * g.Tq * g.D, g.D, pk + b * g.Tk * g.D, g.D, 0.0f, P,
                     g.Tk);
      masked_softmax_rows(P, g, b);
      // out = P v : [Tq, Tk] · [Tk, Dv]
      if (g.Dv > 0) {
        kernels::sgemm(false, false, g.Tq, g.Dv, g.Tk, 1.0f, P, g.Tk, pv + b * g.Tk * g.Dv, g.Dv, 0.0f,
                       po + b * g.Tq * g.Dv, g.Dv);
      }
    });
  }
  if (should_record({q, k, v})) {
    // Every operand is kept (a create_graph sweep recomputes the probabilities with history); in
    // training all three require grad, so the first-order backward needs them all anyway.
    SavedTensor sq = save(qc, "scaled_dot_product_attention");
    SavedTensor sk = save(kc, "scaled_dot_product_attention");
    SavedTensor sv = save(vc, "scaled_dot_product_attention");
    record("scaled_dot_product_attention", out, {q, k, v},
           [sq, sk, sv, sp = save(probs, "scaled_dot_product_attention"), g](const Tensor& grad_out, GradSink& s) {
             if (s.create_graph())
               return attention_backward_graph(grad_out, s.saved(sq), s.saved(sk), s.saved(sv), g, s);
             if (g.Tq == 0 || g.BH == 0) {  // empty output: every gradient is zero
               for (size_t i = 0; i < 3; ++i) {
                 if (!s.needs(i)) continue;
                 GradSink::Accum acc = s.accumulate(i);
                 if (acc.beta == 0.0f) kernels::fill(acc.data, shape_numel(s.input_shape(i)), 0.0f);
               }
               return;
             }
             const Tensor gy = grad_out.contiguous();
             const float* pg = gy.data();
             const float* pp = sp.get().data();
             if (s.needs(2)) {  // dV [Tk, Dv] = Pᵀ [Tk, Tq] · dO [Tq, Dv]
               GradSink::Accum acc = s.accumulate(2);
               if (g.Dv > 0) {
                 for_each_problem(g.BH, [&](int64_t b) {
                   kernels::sgemm(true, false, g.Tk, g.Dv, g.Tq, 1.0f, pp + b * g.Tq * g.Tk, g.Tk, pg + b * g.Tq * g.Dv,
                                  g.Dv, acc.beta, acc.data + b * g.Tk * g.Dv, g.Dv);
                 });
               }
             }
             if (!s.needs(0) && !s.needs(1)) return;
             // dS [Tq, Tk] = P ⊙ (dP - rowsum(dP ⊙ P)), dP = dO [Tq, Dv] · Vᵀ [Dv, Tk]
             Tensor dscores = make_tensor({g.BH, g.Tq, g.Tk});
             float* pds = dscores.data();
             const float* pv = sv.get().data();
             for_each_problem(g.BH, [&](int64_t b) {
               float* dS = pds + b * g.Tq * g.Tk;
               const float* P = pp + b * g.Tq * g.Tk;
               if (g.Dv > 0) {
                 kernels::sgemm(false, true, g.Tq, g.Tk, g.Dv, 1.0f, pg + b * g.Tq * g.Dv, g.Dv, pv + b * g.Tk * g.Dv,
                                g.Dv, 0.0f, dS, g.Tk);
               } else {
                 std::fill(dS, dS + g.Tq * g.Tk, 0.0f);
               }
               for (int64_t i = 0; i < g.Tq; ++i) {
                 float* drow = dS + i * g.Tk;
                 const float* prow = P + i * g.Tk;
                 const int64_t n = visible(g, b, i);
                 float dot = 0.0f;
                 for (int64_t j = 0; j < n; ++j) dot += drow[j] * prow[j];
                 for (int64_t j = 0; j < n; ++j) drow[j] = prow[j] * (drow[j] - dot);
                 for (int64_t j = n; j < g.Tk; ++j) drow[j] = 0.0f;
               }
             });
             if (s.needs(0)) {  // dQ [Tq, D] = scale * dS [Tq, Tk] · K [Tk, D]
               GradSink::Accum acc = s.accumulate(0);
               const float* pk = sk.get().data();
               for_each_problem(g.BH, [&](int64_t b) {
                 kernels::sgemm(false, false, g.Tq, g.D, g.Tk, g.scale, pds + b * g.Tq * g.Tk, g.Tk,
                                pk + b * g.Tk * g.D, g.D, acc.beta, acc.data + b * g.Tq * g.D, g.D);
               });
             }
             if (s.needs(1)) {  // dK [Tk, D] = scale * dSᵀ [Tk, Tq] · Q [Tq, D]
               GradSink::Accum acc = s.accumulate(1);
               const float* pq = sq.get().data();
               for_each_problem(g.BH, [&](int64_t b) {
                 kernels::sgemm(true, false, g.Tk, g.D, g.Tq, g.scale, pds + b * g.Tq * g.Tk, g.Tk, pq + b * g.Tq * g.D,
                                g.D, acc.beta, acc.data + b * g.Tk * g.D, g.D);
               });
             }
           });
  }
  return out;
}

}  // namespace scalpel
