// softmax, log_softmax, cross_entropy, mse_loss, dot and norm: forward and backward side by side.
//
// softmax/log_softmax work along any dimension by viewing the input as [outer, R, inner].
// cross_entropy is fused (log-softmax, pick, mean) and numerically stable; its backward is
// (softmax - target distribution) / n_valid.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/kernels/loops.h"
#include "core/kernels/sums.h"
#include "core/kernels/vmath.h"
#include "core/ops.h"

namespace scalpel {

namespace {

using kernels::Split3;
using kernels::split_at;

// x [outer, R, inner] -> y (same) softmax (log=false) or log-softmax (log=true) along R.
void softmax_kernel(const float* x, float* y, const Split3& s, bool log) {
  parallel_for(s.outer * s.inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(s.r, 1)), [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      const int64_t o = w / s.inner, i = w % s.inner;
      const float* p = x + o * s.r * s.inner + i;
      float* q = y + o * s.r * s.inner + i;
      float m = -std::numeric_limits<float>::infinity();
      float sum = 0.0f;
      if (s.inner == 1) {  // a contiguous row: lane-wise max, vectorised exp, lane-wise double sum
        m = kernels::row_max(p, s.r);
        if (!std::isfinite(m)) m = 0.0f;
        for (int64_t r = 0; r < s.r; ++r) q[r] = kernels::exp_approx(p[r] - m);
        sum = static_cast<float>(kernels::row_sum(q, s.r));
      } else {
        for (int64_t r = 0; r < s.r; ++r) m = std::max(m, p[r * s.inner]);
        if (!std::isfinite(m)) m = 0.0f;
        for (int64_t r = 0; r < s.r; ++r) {
          const float v = kernels::exp_approx(p[r * s.inner] - m);
          q[r * s.inner] = v;
          sum += v;
        }
      }
      if (log) {
        const float lse = std::log(sum);
        for (int64_t r = 0; r < s.r; ++r) q[r * s.inner] = p[r * s.inner] - m - lse;
      } else {
        const float inv = 1.0f / sum;
        for (int64_t r = 0; r < s.r; ++r) q[r * s.inner] *= inv;
      }
    }
  });
}

}  // namespace

// a (A) -> (A), normalised along dim
Tensor softmax(const Tensor& a, int64_t dim) {
  const int64_t d = normalize_dim(dim, a.dim(), "softmax");
  const Split3 s = split_at(a.shape(), d);
  const Tensor x = a.contiguous();
  Tensor out = make_tensor(a.shape());
  softmax_kernel(x.data(), out.data(), s, false);
  if (should_record({a})) {
    record("softmax", out, {a}, [so = save_output(out, "softmax"), s, d](const Tensor& g, GradSink& sink) {
      // dx = y * (g - sum_r(g * y))
      if (sink.create_graph()) {
        const Tensor y = sink.saved(so);
        sink.add(0, mul(y, sub(g, sum(mul(g, y), {d}, true))));
        return;
      }
      const Tensor gc = g.contiguous();
      const Tensor& y = so.get();
      GradSink::Accum acc = sink.accumulate(0);
      const float* pg = gc.data();
      const float* py = y.data();
      parallel_for(s.outer * s.inner, 64, [&](int64_t b, int64_t e) {
        for (int64_t w = b; w < e; ++w) {
          const int64_t base = (w / s.inner) * s.r * s.inner + w % s.inner;
          float dotv = 0.0f;
          for (int64_t r = 0; r < s.r; ++r) dotv += pg[base + r * s.inner] * py[base + r * s.inner];
          for (int64_t r = 0; r < s.r; ++r) {
            const int64_t k = base + r * s.inner;
            const float v = py[k] * (pg[k] - dotv);
            acc.data[k] = acc.beta == 0.0f ? v : acc.data[k] + v;
          }
        }
      });
    });
  }
  return out;
}

Tensor log_softmax(const Tensor& a, int64_t dim) {
  const int64_t d = normalize_dim(dim, a.dim(), "log_softmax");
  const Split3 s = split_at(a.shape(), d);
  const Tensor x = a.contiguous();
  Tensor out = make_tensor(a.shape());
  softmax_kernel(x.data(), out.data(), s, true);
  if (should_record({a})) {
    record("log_softmax", out, {a}, [so = save_output(out, "log_softmax"), s, d](const Tensor& g, GradSink& sink) {
      // dx = g - exp(y) * sum_r(g)
      if (sink.create_graph()) {
        sink.add(0, sub(g, mul(exp(sink.saved(so)), sum(g, {d}, true))));
        return;
      }
      const Tensor gc = g.contiguous();
      const Tensor& y = so.get();
      GradSink::Accum acc = sink.accumulate(0);
      const float* pg = gc.data();
      const float* py = y.data();
      parallel_for(s.outer * s.inner, 64, [&](int64_t b, int64_t e) {
        for (int64_t w = b; w < e; ++w) {
          const int64_t base = (w / s.inner) * s.r * s.inner + w % s.inner;
          float gs = 0.0f;
          for (int64_t r = 0; r < s.r; ++r) gs += pg[base + r * s.inner];
          for (int64_t r = 0; r < s.r; ++r) {
            const int64_t k = base + r * s.inner;
            const float v = pg[k] - kernels::exp_approx(py[k]) * gs;
            acc.data[k] = acc.beta == 0.0f ? v : acc.data[k] + v;
          }
        }
      });
    });
  }
  return out;
}

// logits [N, C], targets [N] -> scalar mean over rows whose target != ignore_index
Tensor cross_entropy(const Tensor& logits, const IndexTensor& targets, const CrossEntropyOptions& options) {
  if (!logits.defined()) throw std::invalid_argument("cross_entropy: logits are undefined");
  if (logits.dim() != 2) {
    throw std::invalid_argument("cross_entropy: logits must be [N, C], got " + shape_str(logits.shape()) +
                                " (flatten leading dims with reshape({-1, C}))");
  }
  const int64_t N = logits.size(0), C = logits.size(1);
  if (targets.shape != Shape{N}) {
    throw std::invalid_argument("cross_entropy: targets have shape " + shape_str(targets.shape) + ", expected [" +
                                std::to_string(N) + "] to match logits " + shape_str(logits.shape()));
  }
  const float eps = options.label_smoothing;
  if (!(eps >= 0.0f && eps < 1.0f)) {
    throw std::invalid_argument("cross_entropy: label_smoothing must be in [0, 1), got " + std::to_string(eps));
  }
  int64_t valid = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = targets.data[i];
    if (t == options.ignore_index) continue;
    if (t < 0 || t >= C) {
      throw std::invalid_argument("cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(i) +
                                  " is out of range [0, " + std::to_string(C) + ") for logits of shape " +
                                  shape_str(logits.shape()));
    }
    ++valid;
  }
  const Tensor x = logits.contiguous();
  // Per-row log-sum-exp, kept for backward.
  auto lse = std::make_shared<std::vector<float>>(static_cast<size_t>(N));
  std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
  const float* px = x.data();
  parallel_for(N, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* row = px + i * C;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < C; ++c) m = std::max(m, row[c]);
      if (!std::isfinite(m)) m = 0.0f;
      double sum = 0.0, total = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        sum += std::exp(static_cast<double>(row[c] - m));
        total += row[c];
      }
      const double l = m + std::log(sum);
      (*lse)[i] = static_cast<float>(l);
      const int64_t t = targets.data[i];
      if (t == options.ignore_index) continue;
      row_loss[i] = (1.0 - eps) * (l - row[t]) + eps * (l - total / static_cast<double>(C));
    }
  });
  double loss = 0.0;
  for (double v : row_loss) loss += v;
  // Mean over zero valid rows is NaN, as in PyTorch.
  Tensor out = Tensor::scalar(valid > 0 ? static_cast<float>(loss / static_cast<double>(valid))
                                        : std::numeric_limits<float>::quiet_NaN());
  if (should_record({logits})) {
    record("cross_entropy", out, {logits},
           [sx = save(x, "cross_entropy"), lse, targets, options, N, C, valid](const Tensor& g, GradSink& sink) {
             const float e = options.label_smoothing;
             if (sink.create_graph()) {  // (softmax(x) - target) * g / valid on counted rows
               Tensor target = Tensor::zeros({N, C}), counted = Tensor::zeros({N, 1});
               for (int64_t i = 0; i < N; ++i) {
                 const int64_t t = targets.data[i];
                 if (t == options.ignore_index) continue;
                 counted.data()[i] = valid > 0 ? 1.0f / static_cast<float>(valid) : 0.0f;
                 for (int64_t c = 0; c < C; ++c) {
                   target.data()[i * C + c] = (c == t ? 1.0f - e : 0.0f) + e / static_cast<float>(C);
                 }
               }
               sink.add(0, mul(mul(sub(softmax(sink.saved(sx), 1), target), counted), g));
               return;
             }
             const float scale = valid > 0 ? g.item() / static_cast<float>(valid) : 0.0f;
             GradSink::Accum acc = sink.accumulate(0);
             const float* px = sx.get().data();
             parallel_for(N, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t end) {
               for (int64_t i = b; i < end; ++i) {
                 const int64_t t = targets.data[i];
                 float* d = acc.data + i * C;
                 const float* row = px + i * C;
                 const float l = (*lse)[i];
                 for (int64_t c = 0; c < C; ++c) {
                   float v = 0.0f;
                   if (t != options.ignore_index) {
                     const float target_p = (c == t ? 1.0f - e : 0.0f) + e / static_cast<float>(C);
                     v = scale * (kernels::exp_approx(row[c] - l) - target_p);
                   }
                   d[c] = acc.beta == 0.0f ? v : d[c] + v;
                 }
               }
             });
           });
  }
  return out;
}

// a (A), b (A) -> scalar mean((a - b)^2)
Tensor mse_loss(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw std::invalid_argument("mse_loss: an operand is undefined");
  if (a.shape() != b.shape()) {
    throw std::invalid_argument("mse_loss: shapes differ: input is " + shape_str(a.shape()) + ", target is " +
                                shape_str(b.shape()));
  }
  return mean(square(sub(a, b)));
}

// a (A), b (A) -> scalar sum(a * b)
Tensor dot(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw std::invalid_argument("dot: an operand is undefined");
  if (a.shape() != b.shape()) {
    throw std::invalid_argument("dot: shapes differ: a is " + shape_str(a.shape()) + ", b is " + shape_str(b.shape()));
  }
  return sum(mul(a, b));
}

// a (A) -> scalar sqrt(sum(a^2)); the gradient at a = 0 is 0
Tensor norm(const Tensor& a) {
  if (!a.defined()) throw std::invalid_argument("norm: the input is undefined");
  const Tensor x = a.contiguous();
  double ss = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) ss += static_cast<double>(x.data()[i]) * x.data()[i];
  Tensor out = Tensor::scalar(static_cast<float>(std::sqrt(ss)));
  if (should_record({a})) {
    record("norm", out, {a}, [sx = save(a, "norm"), so = save_output(out, "norm")](const Tensor& g, GradSink& s) {
      const float n = so.get().item();
      if (s.create_graph()) {  // x * g / n (x = 0 where n = 0, so the gradient there is 0)
        s.add(0, n > 0.0f ? mul(s.saved(sx), div(g, s.saved(so))) : Tensor::zeros(s.input_shape(0)));
        return;
      }
      const float k = n > 0.0f ? g.item() / n : 0.0f;
      s.add(0, mul(sx.get(), k));
    });
  }
  return out;
}

// a (A) -> A without `dim` (or kept as size 1): sqrt(sum(a^2)) along dim; the gradient at an
// all-zero slice is 0, as for norm(a) (the composite sqrt(sum(square)) would give 0 * inf = NaN)
Tensor norm(const Tensor& a, int64_t dim, bool keepdim) {
  if (!a.defined()) throw std::invalid_argument("norm: the input is undefined");
  const int64_t d = normalize_dim(dim, a.dim(), "norm");
  Tensor n, out;
  {
    NoGradGuard no_grad;
    n = sqrt(sum(square(a), {d}, true));  // keepdim shape
    out = keepdim ? n : n.squeeze(d);
  }
  if (should_record({a})) {
    record("norm_dim", out, {a}, [sx = save(a, "norm"), sn = save(n, "norm"), d](const Tensor& g, GradSink& s) {
      // dx = g * x / n, and 0 where n == 0
      const Tensor& nv = sn.get();
      if (s.create_graph()) {  // n recomputed with history; 1 in place of a zero norm (x is 0 there)
        const Tensor positive = kernels::map(nv, [](float v) { return v > 0.0f ? 1.0f : 0.0f; });
        const Tensor x = s.saved(sx);
        const Tensor safe = where(positive, norm(x, d, true), Tensor::ones({}));
        s.add(0, mul(x, div(g.reshape(nv.shape()), safe)));
        return;
      }
      const Tensor k = kernels::map2(g.reshape(nv.shape()), nv, nv.shape(),
                                     [](float gv, float v) { return v > 0.0f ? gv / v : 0.0f; });
      s.add(0, mul(sx.get(), k));
    });
  }
  return out;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) {
    throw std::invalid_argument("max_abs_diff: shapes differ: " + shape_str(a.shape()) + " vs " + shape_str(b.shape()));
  }
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  float m = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    const float d = std::fabs(x[i] - y[i]);
    if (std::isnan(d)) return d;
    m = std::max(m, d);
  }
  return m;
}

bool allclose(const Tensor& a, const Tensor& b, float rtol, float atol) {
  if (a.shape() != b.shape()) return false;
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(std::fabs(x[i] - y[i]) <= atol + rtol * std::fabs(y[i]))) return false;
  }
  return true;
}

}  // namespace scalpel
