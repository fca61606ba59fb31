// Normalization: batch_norm (and batch_norm_relu, the same with a ReLU on the output) and
// layer_norm, fused, forward and backward side by side.
//
// batch_norm statistics take one pass of shifted sums in double (the shift is the channel's first
// value, so a large common offset cancels before squaring); layer_norm's are two-pass (mean, then
// the mean of squared deviations) in double. Forward saves the per-channel (batch_norm) or
// per-row (layer_norm) mean and inverse standard deviation; backward uses the closed forms
//   xhat = (x - mean) * invstd,  dxhat = dy * weight,
//   batch_norm (training): dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) over N and
//                          spatial positions of a channel (eval: dx = dxhat * invstd, statistics fixed)
//   layer_norm:            the same means taken over the row
//   dweight = sum(dy * xhat), dbias = sum(dy).
// Every sum has a fixed order independent of the thread count (batch_norm: channels are split across
// threads, each channel summed n-major; layer_norm: rows split for dx, columns split for
// dweight/dbias), so results are reproducible bit for bit.
#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dist.h"
#include "core/kernels/loops.h"
#include "core/kernels/sums.h"
#include "core/ops.h"

namespace scalpel {

namespace {

using FloatVec = std::shared_ptr<std::vector<float>>;

FloatVec make_vec(int64_t n) { return std::make_shared<std::vector<float>>(static_cast<size_t>(n)); }

void check_param(const Tensor& t, int64_t n, const char* op, const char* what, const Shape& x_shape) {
  if (t.defined() && t.shape() != Shape{n}) {
    throw std::invalid_argument(std::string(op) + ": " + what + " has shape " + shape_str(t.shape()) + ", expected [" +
                                std::to_string(n) + "] for input " + shape_str(x_shape));
  }
}

// Values of an optional [n] parameter (fill value when undefined), read once on the calling thread.
std::vector<float> values_or(const Tensor& t, int64_t n, float fill) {
  if (!t.defined()) return std::vector<float>(static_cast<size_t>(n), fill);
  return t.to_vector();
}

}  // namespace

// x [N, C, S...] (S = product of trailing dims, 1 for [N, C]); weight, bias [C] -> out (x's shape)
namespace {

// The normalisation's backward as recorded ops, for create_graph sweeps. x is normalised over
// `dims` (statistics kept as size-1 dims); with batch statistics they are recomputed from x with
// history, else `mean_c`/`invstd_c` are constants (evaluation mode). `w` is the scale shaped to
// broadcast against x (undefined: 1); `on` masks a fused ReLU (undefined: none). The weight and
// bias gradients sum over `param_dims` and take `param_shape`.
void norm_backward_graph(GradSink& s, const Tensor& g, const Tensor& x, const Tensor& w,
                         const std::vector<int64_t>& dims, const std::vector<int64_t>& param_dims, bool batch_stats,
                         const Tensor& mean_c, const Tensor& invstd_c, float eps, const Tensor& on,
                         const Shape& param_shape) {
  Tensor xhat, invstd;
  if (batch_stats) {
    const Tensor xc = sub(x, mean(x, dims, true));
    invstd = pow(add(mean(square(xc), dims, true), eps), -0.5f);
    xhat = mul(xc, invstd);
  } else {
    invstd = invstd_c;
    xhat = mul(sub(x, mean_c), invstd);
  }
  const Tensor ge = on.defined() ? mul(g, on) : g;
  const Tensor gxhat = w.defined() ? mul(ge, w) : ge;
  if (s.needs(0)) {
    if (batch_stats) {
      const Tensor centred = sub(gxhat, mean(gxhat, dims, true));
      s.add(0, mul(invstd, sub(centred, mul(xhat, mean(mul(gxhat, xhat), dims, true)))));
    } else {
      s.add(0, mul(gxhat, invstd));
    }
  }
  if (s.needs(1)) s.add(1, sum(mul(ge, xhat), param_dims).reshape(param_shape));
  if (s.needs(2)) s.add(2, sum(ge, param_dims).reshape(param_shape));
}

// x [N, C, S] -> y [N, C, S]: y = x * scale[c] + shift[c], then max(y, 0) when relu. The forward's
// output, and the recipe that rebuilds it for a consumer's backward (set_recompute), so both
// compute the same bits.
void apply_scale_shift(const float* px, float* po, const std::vector<float>& scale, const std::vector<float>& shift,
                       bool relu, int64_t N, int64_t C, int64_t S) {
  parallel_for(N * C, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(S, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      const float a = scale[c], sh = shift[c];
      const float* xi = px + r * S;
      float* yo = po + r * S;
      if (relu) {
        for (int64_t i = 0; i < S; ++i) {
          const float v = xi[i] * a + sh;
          yo[i] = v > 0.0f ? v : 0.0f;
        }
      } else {
        for (int64_t i = 0; i < S; ++i) yo[i] = xi[i] * a + sh;
      }
    }
  });
}

// batch_norm, and with relu = true the fused relu(batch_norm(...)): the ReLU is applied as the
// output is written, and backward multiplies dy by (out > 0 ? 1 : 0) inside its two passes, exactly
// as relu's backward would, recomputing out > 0 from x (x * scale + shift, the forward's own
// arithmetic) instead of reading the output back. `op` names errors.
// sync (data parallel, core/dist.h): the statistics and the backward's two channel sums are over
// the rows of every rank (in forward two reductions, Chan's combination: counts and sums, then the
// centred sums; in backward one, of both sums); in a world of one it changes nothing.
Tensor batch_norm_impl(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                       Tensor running_var, bool training, float momentum, float eps, bool relu, bool sync) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
  if (x.dim() < 2) {
    throw std::invalid_argument(std::string(op) + ": input must be [N, C, ...] with at least 2 dims, got " +
                                shape_str(x.shape()));
  }
  const int64_t N = x.size(0), C = x.size(1), S = N == 0 || C == 0 ? 0 : x.numel() / (N * C);
  sync = sync && training && dist::active();
  const int64_t M_local = N * S;  // values per channel on this rank
  int64_t M = M_local;            // ... over every rank (sync)
  check_param(weight, C, op, "weight", x.shape());
  check_param(bias, C, op, "bias", x.shape());
  check_param(running_mean, C, op, "running_mean", x.shape());
  check_param(running_var, C, op, "running_var", x.shape());
  if (running_mean.defined() != running_var.defined()) {
    throw std::invalid_argument(std::string(op) +
                                ": running_mean and running_var must both be defined or both undefined");
  }
  if (!training && !running_mean.defined()) {
    throw std::invalid_argument(std::string(op) +
                                ": evaluation mode (training=false) needs running_mean and running_var "
                                "(hint: run in training mode, or keep running statistics)");
  }
  // Synchronised, a rank needs one row; the count over every rank is checked after the first
  // reduction below.
  if (training && (sync ? M_local < 1 : M <= 1)) {
    throw std::invalid_argument(std::string(op) + ": expected more than 1 value per channel when training, got input " +
                                shape_str(x.shape()));
  }
  if (!(eps >= 0.0f) || !std::isfinite(eps)) {
    throw std::invalid_argument(std::string(op) + ": eps must be finite and non-negative, got " + std::to_string(eps));
  }
  if (!std::isfinite(momentum)) throw std::invalid_argument(std::string(op) + ": momentum must be finite");

  const Tensor xc = x.contiguous();
  const float* px = xc.data();
  const std::vector<float> w = values_or(weight, C, 1.0f), b = values_or(bias, C, 0.0f);
  FloatVec mean = make_vec(C), invstd = make_vec(C);
  std::vector<double> batch_mean(static_cast<size_t>(training ? C : 0)), batch_var(batch_mean.size());
  const int64_t grain = std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(M, 1));

  if (training) {
    // Per-channel statistics; channels [c0, c1) per task, each summed n-major.
    parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
      std::vector<double> s1(static_cast<size_t>(c1 - c0), 0.0), s2(s1.size(), 0.0), k(s1.size());
      for (int64_t c = c0; c < c1; ++c) k[c - c0] = px[c * S];  // the channel's first value
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t c = c0; c < c1; ++c) {
          double a = 0.0, b2 = 0.0;
          kernels::row_shifted_sums(px + (n * C + c) * S, S, k[c - c0], a, b2);
          s1[c - c0] += a;
          s2[c - c0] += b2;
        }
      }
      for (int64_t c = c0; c < c1; ++c) {
        const double d = s1[c - c0] / static_cast<double>(M_local);
        const double mu = k[c - c0] + d;
        const double var = std::max(0.0, s2[c - c0] / static_cast<double>(M_local) - d * d);
        batch_mean[c] = mu;
        batch_var[c] = var;
        (*mean)[c] = static_cast<float>(mu);
        (*invstd)[c] = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
      }
    });
    if (sync) {
      // Chan et al.: n = Σ n_r, mean μ = Σ n_r μ_r / n, variance Σ n_r (σ²_r + (μ_r - μ)²) / n.
      std::vector<double> buf(static_cast<size_t>(C + 1));  // Σ n_r μ_r per channel, then n
      for (int64_t c = 0; c < C; ++c) buf[c] = static_cast<double>(M_local) * batch_mean[c];
      buf[C] = static_cast<double>(M_local);
      dist::allreduce_sum(buf.data(), C + 1);
      M = static_cast<int64_t>(buf[C]);
      if (M <= 1) {  // the same on every rank
        throw std::invalid_argument(std::string(op) +
                                    ": expected more than 1 value per channel over the ranks when training, got " +
                                    std::to_string(M));
      }
      std::vector<double> cen(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; ++c) {
        buf[c] /= static_cast<double>(M);
        const double dm = batch_mean[c] - buf[c];
        cen[c] = static_cast<double>(M_local) * (batch_var[c] + dm * dm);
      }
      dist::allreduce_sum(cen.data(), C);
      for (int64_t c = 0; c < C; ++c) {
        batch_mean[c] = buf[c];
        batch_var[c] = std::max(0.0, cen[c] / static_cast<double>(M));
        (*mean)[c] = static_cast<float>(batch_mean[c]);
        (*invstd)[c] = static_cast<float>(1.0 / std::sqrt(batch_var[c] + static_cast<double>(eps)));
      }
    }
    if (running_mean.defined()) {
      // new = (1 - momentum) * old + momentum * batch_stat, with the unbiased variance.
      const std::vector<float> rm = running_mean.to_vector(), rv = running_var.to_vector();
      std::vector<float> nm(static_cast<size_t>(C)), nv(static_cast<size_t>(C));
      const double mo = momentum, unbias = static_cast<double>(M) / static_cast<double>(M - 1);
      for (int64_t c = 0; c < C; ++c) {
        nm[c] = static_cast<float>((1.0 - mo) * rm[c] + mo * batch_mean[c]);
        nv[c] = static_cast<float>((1.0 - mo) * rv[c] + mo * batch_var[c] * unbias);
      }
      NoGradGuard no_grad;
      running_mean.copy_(Tensor::from_vector(nm, {C}));
      running_var.copy_(Tensor::from_vector(nv, {C}));
    }
  } else {
    const std::vector<float> rm = running_mean.to_vector(), rv = running_var.to_vector();
    for (int64_t c = 0; c < C; ++c) {
      (*mean)[c] = rm[c];
      (*invstd)[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rv[c]) + static_cast<double>(eps)));
    }
  }

  // out = x * scale + shift per channel, scale = weight * invstd, shift = bias - mean * scale.
  Tensor out = make_tensor(x.shape());
  float* po = out.data();
  FloatVec scale_v = make_vec(C), shift_v = make_vec(C);
  std::vector<float>& scale = *scale_v;
  std::vector<float>& shift = *shift_v;
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = w[c] * (*invstd)[c];
    shift[c] = b[c] - (*mean)[c] * scale[c];
  }
  apply_scale_shift(px, po, scale, shift, relu, N, C, S);

  if (should_record({x, weight, bias})) {
    const bool x_grad = x.requires_grad();
    record(op, out, {x, weight, bias},
           [sx = save(xc, op), sw = save(weight, op), mean, invstd, scale_v = relu ? scale_v : FloatVec(),
            shift_v = relu ? shift_v : FloatVec(), w = x_grad ? w : std::vector<float>(), training, relu, sync, N, C, S,
            M, grain, eps, op](const Tensor& grad_out, GradSink& s) {
             if (s.create_graph()) {
               if (sync) {
                 throw std::invalid_argument(std::string(op) +
                                             ": create_graph is not supported with sync=true (SyncBatchNorm)");
               }
               const Tensor xs = s.saved(sx);
               Shape ps(static_cast<size_t>(xs.dim()), 1);
               ps[1] = C;
               std::vector<int64_t> dims{0};
               for (int64_t d = 2; d < xs.dim(); ++d) dims.push_back(d);
               Tensor on;
               if (relu) {  // the fused ReLU's mask, as in forward: x * scale + shift > 0
                 on = make_tensor(xs.shape());
                 const float* px = sx.get().data();
                 float* po = on.data();
                 for (int64_t r = 0; r < N * C; ++r) {
                   const float a = (*scale_v)[r % C], sh = (*shift_v)[r % C];
                   for (int64_t i = r * S; i < (r + 1) * S; ++i) po[i] = px[i] * a + sh > 0.0f ? 1.0f : 0.0f;
                 }
               }
               const Tensor wt = sw.defined() ? s.saved(sw).reshape(ps) : Tensor();
               norm_backward_graph(s, grad_out, xs, wt, dims, dims, training, Tensor::from_vector(*mean, ps),
                                   Tensor::from_vector(*invstd, ps), eps, on, {C});
               return;
             }
             const Tensor gy = grad_out.contiguous();
             const float* pg = gy.data();
             const float* px = sx.get().data();
             // Per-channel sums: sum(dy) and sum(dy * xhat).
             std::vector<double> sum_dy(static_cast<size_t>(C)), sum_dy_xhat(static_cast<size_t>(C));
             parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
               for (int64_t c = c0; c < c1; ++c) sum_dy[c] = sum_dy_xhat[c] = 0.0;
               for (int64_t n = 0; n < N; ++n) {
                 for (int64_t c = c0; c < c1; ++c) {
                   double a = 0.0, bsum = 0.0;
                   const int64_t r = (n * C + c) * S;
                   if (relu) {  // ReLU mask recomputed from x: x * scale + shift > 0, as in forward
                     kernels::row_sum_and_dot_dev<true>(pg + r, px + r, S, (*mean)[c], (*scale_v)[c], (*shift_v)[c], a,
                                                        bsum);
                   } else {
                     kernels::row_sum_and_dot_dev<false>(pg + r, px + r, S, (*mean)[c], 0.0f, 0.0f, a, bsum);
                   }
                   sum_dy[c] += a;
                   sum_dy_xhat[c] += bsum * (*invstd)[c];
                 }
               }
             });
             // The weight and bias gradients stay per rank (TrainStep averages them over the ranks);
             // dx needs both sums over every rank's rows.
             std::vector<double> both;  // [sum_dy | sum_dy_xhat] over every rank (sync)
             if (sync) {
               both = sum_dy;
               both.insert(both.end(), sum_dy_xhat.begin(), sum_dy_xhat.end());
               dist::allreduce_sum(both.data(), 2 * C);
             }
             const double* dy_all = sync ? both.data() : sum_dy.data();
             const double* dy_xhat_all = sync ? both.data() + C : sum_dy_xhat.data();
             if (s.needs(0)) {
               GradSink::Accum acc = s.accumulate(0);
               const bool fresh = acc.beta == 0.0f;
               parallel_for(N * C, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(S, 1)),
                            [&](int64_t r0, int64_t r1) {
                              for (int64_t r = r0; r < r1; ++r) {
                                const int64_t c = r % C;
                                const float is = (*invstd)[c], m = (*mean)[c];
                                const float k = w[c] * is;  // dx = k * (dy - a - xhat * bcoef) in training
                                const float a = training ? static_cast<float>(dy_all[c] / M) : 0.0f;
                                const float bcoef = training ? static_cast<float>(dy_xhat_all[c] / M) : 0.0f;
                                const float* xr = px + r * S;
                                const float* gr = pg + r * S;
                                float* d = acc.data + r * S;
                                const float xb = is * bcoef;
                                const float sc = relu ? (*scale_v)[c] : 0.0f, sh = relu ? (*shift_v)[c] : 0.0f;
                                if (relu && fresh) {
                                  for (int64_t i = 0; i < S; ++i) {
                                    const float on = xr[i] * sc + sh > 0.0f ? 1.0f : 0.0f;
                                    d[i] = k * (gr[i] * on - a - (xr[i] - m) * xb);
                                  }
                                } else if (relu) {
                                  for (int64_t i = 0; i < S; ++i) {
                                    const float on = xr[i] * sc + sh > 0.0f ? 1.0f : 0.0f;
                                    d[i] += k * (gr[i] * on - a - (xr[i] - m) * xb);
                                  }
                                } else if (fresh) {
                                  for (int64_t i = 0; i < S; ++i) d[i] = k * (gr[i] - a - (xr[i] - m) * xb);
                                } else {
                                  for (int64_t i = 0; i < S; ++i) d[i] += k * (gr[i] - a - (xr[i] - m) * xb);
                                }
                              }
                            });
             }
             if (s.needs(1)) {
               GradSink::Accum acc = s.accumulate(1);
               for (int64_t c = 0; c < C; ++c) {
                 acc.data[c] = static_cast<float>(sum_dy_xhat[c]) + (acc.beta == 0.0f ? 0.0f : acc.data[c]);
               }
             }
             if (s.needs(2)) {
               GradSink::Accum acc = s.accumulate(2);
               for (int64_t c = 0; c < C; ++c) {
                 acc.data[c] = static_cast<float>(sum_dy[c]) + (acc.beta == 0.0f ? 0.0f : acc.data[c]);
               }
             }
           });
    // A consumer that saves the output (the next convolution) keeps this recipe instead: it reads
    // the input this node keeps anyway, so the output's storage is freed after the forward pass.
    set_recompute(out, [sx = save(xc.detach(), op), scale_v, shift_v, relu, N, C, S] {
      const Tensor& xs = sx.get();
      Tensor y = make_tensor(xs.shape());
      apply_scale_shift(xs.data(), y.data(), *scale_v, *shift_v, relu, N, C, S);
      return y;
    });
  }
  return out;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean, Tensor running_var,
                  bool training, float momentum, float eps, bool sync) {
  return batch_norm_impl("batch_norm", x, weight, bias, std::move(running_mean), std::move(running_var), training,
                         momentum, eps, false, sync);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                       Tensor running_var, bool training, float momentum, float eps, bool sync) {
  return batch_norm_impl("batch_norm_relu", x, weight, bias, std::move(running_mean), std::move(running_var), training,
                         momentum, eps, true, sync);
}

// x [R..., D] (R = rows), weight, bias [D] -> out (x's shape), normalized over the last dim
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  if (!x.defined()) throw std::invalid_argument("layer_norm: the input is undefined");
  if (x.dim() < 1) throw std::invalid_argument("layer_norm: input must have at least 1 dim, got a scalar");
  const int64_t D = x.size(-1);
  if (D <= 0) throw std::invalid_argument("layer_norm: the last dim of input " + shape_str(x.shape()) + " is empty");
  check_param(weight, D, "layer_norm", "weight", x.shape());
  check_param(bias, D, "layer_norm", "bias", x.shape());
  if (!(eps >= 0.0f) || !std::isfinite(eps)) {
    throw std::invalid_argument("layer_norm: eps must be finite and non-negative, got " + std::to_string(eps));
  }
  const int64_t R = x.numel() / D;
  const Tensor xc = x.contiguous();
  const float* px = xc.data();
  const std::vector<float> w = values_or(weight, D, 1.0f), b = values_or(bias, D, 0.0f);
  FloatVec mean = make_vec(R), invstd = make_vec(R);
  Tensor out = make_tensor(x.shape());
  float* po = out.data();
  const int64_t grain = std::max<int64_t>(1, kernels::kGrain / D);
  parallel_for(R, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = px + r * D;
      double s = 0.0;
      for (int64_t j = 0; j < D; ++j) s += xr[j];
      const double mu = s / static_cast<double>(D);
      double v = 0.0;
      for (int64_t j = 0; j < D; ++j) {
        const double d = xr[j] - mu;
        v += d * d;
      }
      const float m = static_cast<float>(mu);
      const float is = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(D) + static_cast<double>(eps)));
      (*mean)[r] = m;
      (*invstd)[r] = is;
      float* yr = po + r * D;
      for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - m) * is * w[j] + b[j];
    }
  });
  if (should_record({x, weight, bias})) {
    record("layer_norm", out, {x, weight, bias},
           [sx = save(xc, "layer_norm"), sw = save(weight, "layer_norm"), mean, invstd, w, R, D, grain, eps](
               const Tensor& grad_out, GradSink& s) {
             if (s.create_graph()) {  // rows are the batch here: statistics over dim 1, parameter sums over 0
               const Tensor xs = s.saved(sx).reshape({R, D});
               const Tensor wt = sw.defined() ? s.saved(sw) : Tensor();
               norm_backward_graph(s, grad_out.reshape({R, D}), xs, wt, {1}, {0}, true, Tensor(), Tensor(), eps,
                                   Tensor(), {D});
               return;
             }
             const Tensor gy = grad_out.contiguous();
             const float* pg = gy.data();
             const float* px = sx.get().data();
             if (s.needs(0)) {  // dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * w
               GradSink::Accum acc = s.accumulate(0);
               const bool fresh = acc.beta == 0.0f;
               parallel_for(R, grain, [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const float* xr = px + r * D;
                   const float* gr = pg + r * D;
                   const float m = (*mean)[r], is = (*invstd)[r];
                   double s1 = 0.0, s2 = 0.0;
                   for (int64_t j = 0; j < D; ++j) {
                     const double dxh = static_cast<double>(gr[j]) * w[j];
                     s1 += dxh;
                     s2 += dxh * ((xr[j] - m) * is);
                   }
                   const float a = static_cast<float>(s1 / D), bc = static_cast<float>(s2 / D);
                   float* d = acc.data + r * D;
                   for (int64_t j = 0; j < D; ++j) {
                     const float v = is * (gr[j] * w[j] - a - (xr[j] - m) * is * bc);
                     d[j] = fresh ? v : d[j] + v;
                   }
                 }
               });
             }
             // dweight = sum over rows of dy * xhat, dbias = sum over rows of dy (columns split).
             for (size_t which = 1; which <= 2; ++which) {
               if (!s.needs(which)) continue;
               GradSink::Accum acc = s.accumulate(which);
               parallel_for(D, 64, [&](int64_t j0, int64_t j1) {
                 std::vector<double> sum(static_cast<size_t>(j1 - j0), 0.0);
                 for (int64_t r = 0; r < R; ++r) {
                   const float* xr = px + r * D;
                   const float* gr = pg + r * D;
                   const float m = (*mean)[r], is = (*invstd)[r];
                   if (which == 1) {
                     for (int64_t j = j0; j < j1; ++j) sum[j - j0] += static_cast<double>(gr[j]) * ((xr[j] - m) * is);
                   } else {
                     for (int64_t j = j0; j < j1; ++j) sum[j - j0] += gr[j];
                   }
                 }
                 for (int64_t j = j0; j < j1; ++j) {
                   acc.data[j] = static_cast<float>(sum[j - j0]) + (acc.beta == 0.0f ? 0.0f : acc.data[j]);
                 }
               });
             }
           });
  }
  return out;
}

}  // namespace scalpel
