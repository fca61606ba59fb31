// Analytic GEMM FLOP counts of one training step of the benchmarked models (bench_nn.cpp and the
// PyTorch comparison, compare_steps.cpp), so both report throughput against the same work. The
// counting rules are in bench_nn.cpp's header: forward 2·M·N·K per product; backward the weight
// gradient plus the input gradient where the input needs one; convolutions as their im2col
// product; attention as the full T×T products.
#pragma once

#include <cstdint>
#include <vector>

namespace scalpel {
namespace bench {

inline double gemm(double m, double n, double k) { return 2.0 * m * n * k; }

// GEMM FLOPs of one step of a model: forward and backward separately.
struct Flops {
  double fwd = 0, bwd = 0;
  // A product out [m, n] = in [m, k] · W [k, n]: backward always computes dW, and dX when
  // `input_grad`.
  void product(double m, double n, double k, bool input_grad) {
    fwd += gemm(m, n, k);
    bwd += gemm(m, n, k) * (input_grad ? 2.0 : 1.0);
  }
};

// ---- MLP ----------------------------------------------------------------------------------------

inline Flops mlp_flops(const std::vector<int64_t>& widths, int64_t batch) {
  Flops f;
  for (size_t i = 0; i + 1 < widths.size(); ++i) f.product(batch, widths[i + 1], widths[i], i > 0);
  return f;
}

// ---- ResNet-18, CIFAR stem ----------------------------------------------------------------------

// Conv2d as im2col GEMM: out [N*Ho*Wo, Cout] = cols [N*Ho*Wo, Cin*k*k] · Wᵀ.
inline void conv(Flops& f, int64_t n, int64_t cin, int64_t cout, int64_t k, int64_t ho, bool input_grad) {
  f.product(static_cast<double>(n) * ho * ho, cout, static_cast<double>(cin) * k * k, input_grad);
}

inline Flops resnet_flops(int64_t width, int64_t batch, int64_t hw, int64_t classes) {
  Flops f;
  conv(f, batch, 3, width, 3, hw, false);  // stem: the image needs no gradient
  int64_t in = width, h = hw;
  for (int s = 0; s < 4; ++s) {
    const int64_t out = width << s;
    for (int b = 0; b < 2; ++b) {
      const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      const int64_t ho = h / stride;
      conv(f, batch, in, out, 3, ho, true);                                // conv1
      conv(f, batch, out, out, 3, ho, true);                               // conv2
      if (stride != 1 || in != out) conv(f, batch, in, out, 1, ho, true);  // downsample
      in = out;
      h = ho;
    }
  }
  f.product(batch, classes, in, true);  // head
  return f;
}

// ---- ByteLM -------------------------------------------------------------------------------------

inline Flops byte_lm_flops(int64_t layers, int64_t d, int64_t heads, int64_t d_ff, int64_t vocab, int64_t batch,
                           int64_t t) {
  Flops f;
  const double bt = static_cast<double>(batch) * t;
  for (int64_t l = 0; l < layers; ++l) {
    f.product(bt, 3 * d, d, true);  // qkv
    f.product(bt, d, d, true);      // proj
    f.product(bt, d_ff, d, true);   // fc1
    f.product(bt, d, d_ff, true);   // fc2
    const double dh = static_cast<double>(d / heads), problems = static_cast<double>(batch) * heads;
    f.fwd += problems * 2 * gemm(t, t, dh);  // S = q kᵀ, O = P v
    f.bwd += problems * 4 * gemm(t, t, dh);  // dV = Pᵀ dO, dP = dO vᵀ, dQ = dS k, dK = dSᵀ q
  }
  f.product(bt, vocab, d, true);  // head (tied: h · Eᵀ)
  return f;
}

}  // namespace bench
}  // namespace scalpel
