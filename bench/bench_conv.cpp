// conv2d forward + backward on the CIFAR ResNet-18 layer shapes (batch 32, 3x3 kernels, pad 1).
//
// Each benchmark runs conv2d forward, then a backward computing dX, dW and db (the training step
// of one layer), and reports GFLOP/s over wall time: 2*N*O*Ho*Wo*C*kh*kw flops for the forward
// product and twice that for backward (dW and dX products); the im2col/col2im copies and bias work
// are not counted, so the figure is what the convolution achieves as a fraction of the raw
// sgemm peak that bench_common.h measures in the same run ("frac_of_sgemm_peak").
// Shapes: 3->64 and 64->64 at 32x32, 128->128 at 16x16, 256->256 at 8x8, 512->512 at 4x4, plus the
// stride-2 transitions 64->128 (32x32 -> 16x16) and the forward alone for 64->64; then the same
// layers at width 16 (16->16 at 32x32 ... 128->128 at 4x4, stride-2 16->32).
#include <benchmark/benchmark.h>

#include "bench_common.h"
#include "core/ops.h"

namespace {

using namespace scalpel;

struct ConvShape {
  int64_t n, c, o, hw, stride;
};

double conv_flops(const ConvShape& s, int64_t ho) { return 2.0 * s.n * s.o * ho * ho * s.c * 9; }

void BM_Conv2dForwardBackward(benchmark::State& state) {
  const ConvShape s{state.range(0), state.range(1), state.range(2), state.range(3), state.range(4)};
  Generator gen(1);
  Tensor x = Tensor::normal({s.n, s.c, s.hw, s.hw}, gen).set_requires_grad();
  Tensor w = Tensor::normal({s.o, s.c, 3, 3}, gen, 0.0f, 0.05f).set_requires_grad();
  Tensor b = Tensor::zeros({s.o}).set_requires_grad();
  const Conv2dParams p = Conv2dParams().stride(s.stride).padding(1);
  const int64_t ho = (s.hw + 2 - 3) / s.stride + 1;
  const Tensor seed = Tensor::normal({s.n, s.o, ho, ho}, gen);
  for (auto _ : state) {
    Tensor out = conv2d(x, w, b, p);
    std::vector<Tensor> g = grad({out}, {x, w, b}, GradOptions().set_seeds({seed}));
    benchmark::DoNotOptimize(g[0].data());
  }
  scalpel::bench::set_flop_counters(state, 3.0 * conv_flops(s, ho));
}

void BM_Conv2dForward(benchmark::State& state) {
  const ConvShape s{state.range(0), state.range(1), state.range(2), state.range(3), state.range(4)};
  Generator gen(1);
  const Tensor x = Tensor::normal({s.n, s.c, s.hw, s.hw}, gen);
  const Tensor w = Tensor::normal({s.o, s.c, 3, 3}, gen, 0.0f, 0.05f);
  const Tensor b = Tensor::zeros({s.o});
  const Conv2dParams p = Conv2dParams().stride(s.stride).padding(1);
  const int64_t ho = (s.hw + 2 - 3) / s.stride + 1;
  for (auto _ : state) {
    Tensor out = conv2d(x, w, b, p);
    benchmark::DoNotOptimize(out.data());
  }
  scalpel::bench::set_flop_counters(state, conv_flops(s, ho));
}

// Args: N, C_in, C_out, H (= W), stride.
BENCHMARK(BM_Conv2dForwardBackward)
    ->ArgNames({"N", "C", "O", "HW", "stride"})
    ->Args({32, 3, 64, 32, 1})
    ->Args({32, 64, 64, 32, 1})
    ->Args({32, 64, 128, 32, 2})
    ->Args({32, 128, 128, 16, 1})
    ->Args({32, 256, 256, 8, 1})
    ->Args({32, 512, 512, 4, 1})
    ->Args({32, 16, 16, 32, 1})
    ->Args({32, 16, 32, 32, 2})
    ->Args({32, 32, 64, 16, 2})
    ->Args({32, 64, 128, 8, 2})
    ->Args({32, 3, 16, 32, 1})
    ->Args({32, 32, 32, 16, 1})
    ->Args({32, 64, 64, 8, 1})
    ->Args({32, 128, 128, 4, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Conv2dForward)
    ->ArgNames({"N", "C", "O", "HW", "stride"})
    ->Args({32, 64, 64, 32, 1})
    ->Args({32, 512, 512, 4, 1})
    ->Args({32, 16, 16, 32, 1})
    ->Args({32, 128, 128, 4, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

SCALPEL_BENCH_MAIN();
