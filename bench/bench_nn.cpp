// Model benchmarks: one training step (forward, loss, backward) of the nn models, with the achieved
// GEMM throughput as a fraction of the raw cblas_sgemm peak measured in the same run
// (bench_common.h prints it in the header).
//
// Names are "nn/<model>/<config>/<phase>":
//   fwd     the training-mode forward and the loss, recording the tape (what a step pays before
//           backward; ResNet BatchNorm updates its running statistics as in training);
//   fwdbwd  the same plus zero_grad() and loss.backward() into every parameter's .grad.
// The backward time is fwdbwd - fwd.
//
// FLOPs are counted analytically for the GEMM-heavy work only (Linear, Conv2d as the product of
// its im2col matrix, 2·N·Ho·Wo·O·C·k² whichever algorithm computes it,
// the two attention products per head, the tied/untied LM head): forward 2·M·N·K per product;
// backward 2·M·N·K for the weight gradient plus 2·M·N·K for the input gradient, the latter only
// where the input needs one (not for the first layer fed by data). Attention is counted as the
// full T×T products our fused kernel computes (no causal halving): forward q·kᵀ and P·v, backward
// dV, dP, dQ, dK. Elementwise ops, norms, softmax, pooling, embedding lookups and the loss are
// not counted, so GFLOP/s and frac_of_sgemm_peak measure how close a whole step comes to running
// only its GEMMs at the raw sgemm rate (target >= 0.5).
//
// Models: MLP 784-256-128-10 (ReLU) at batch 256; ResNet-18 (CIFAR stem, one 10-class head) at
// batch 32 and widths 16 and 64 on 32x32 inputs; ByteLM (4 layers, d 256, 8 heads, d_ff 1024,
// tied head, vocab 256) on batch 16 x 128 bytes. Inputs and weights come from fixed seeds.
// Run briefly, e.g.
//   build/bench/bench_nn --benchmark_min_time=0.05
// On a machine shared with other jobs, prefer SCALPEL_THREADS=1 and read cpu_frac_of_peak (see
// run_step): OpenMP threads that wait at a barrier for a descheduled partner make multi-threaded
// wall-clock figures meaningless there.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <cblas.h>

#include "bench_common.h"
#include "bench_flops.h"
#include "core/ops.h"
#include "nn/byte_lm.h"
#include "nn/linear.h"
#include "nn/resnet.h"

namespace scalpel {
namespace {

using benchmark::State;
using namespace scalpel::bench;

// ---- the timed step -----------------------------------------------------------------------------

// Process CPU time (all threads), for the contention-robust counters below.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The raw cblas_sgemm rate per second of process CPU time (n = the header's peak size; one
// warm-up, best of 3), measured once: the reference of cpu_frac_of_peak, robust to other jobs
// taking our cores because only the time we ran is counted (on both sides of the ratio).
double sgemm_cpu_peak_gflops() {
  static const double peak = [] {
    const int n = static_cast<int>(bench::environment().peak_n);
    std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size(), 0.0f);
    auto call = [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(),
                  n);
    };
    call();
    double best = 0;
    for (int r = 0; r < 3; ++r) {
      const double t0 = process_cpu_seconds();
      call();
      best = std::max(best, 2.0 * n * n * static_cast<double>(n) * 1e-9 / (process_cpu_seconds() - t0));
    }
    return best;
  }();
  return peak;
}

// Times `loss_fn` (fwd) or loss_fn + backward (fwdbwd), after one untimed warm-up step, and reports
//   GFLOP/s, frac_of_sgemm_peak   GEMM FLOPs per wall-clock second (bench_common.h), the headline;
//   cpu_frac_of_peak              GEMM FLOPs per second of process CPU time (all threads), over the
//                                 raw sgemm rate measured the same way (sgemm_cpu_peak_gflops). On
//                                 a machine shared with other jobs this tracks the work done while
//                                 we actually held a core; idle-spinning OpenMP threads count
//                                 against it;
//   gemm_GFLOP_per_step           the analytic GEMM work of one step.
void run_step(State& state, nn::Module& model, const std::function<Tensor()>& loss_fn, const Flops& f, bool backward) {
  auto body = [&] {
    Tensor loss = loss_fn();
    if (backward) {
      model.zero_grad();
      loss.backward();
    }
    benchmark::DoNotOptimize(loss.data());
  };
  body();
  const double wall0 = bench::detail::now();
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) body();
  const double iters = static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  const double cpu = (process_cpu_seconds() - cpu0) / iters;
  const double wall = bench::detail::seconds_since(wall0) / iters;
  const double flops = backward ? f.fwd + f.bwd : f.fwd;
  bench::set_flop_counters(state, flops, wall);
  state.counters["cpu_frac_of_peak"] = flops * 1e-9 / cpu / sgemm_cpu_peak_gflops();
  state.counters["gemm_GFLOP_per_step"] = flops * 1e-9;
}

void bm_mlp(State& state, bool backward) {
  const std::vector<int64_t> widths{784, 256, 128, 10};
  const int64_t batch = 256;
  Generator gen(1);
  nn::MLP mlp(nn::MLPOptions(widths), gen);
  const Tensor x = Tensor::uniform({batch, widths[0]}, gen);
  std::vector<int64_t> labels(batch);
  for (auto& l : labels) l = gen.randint(widths.back());
  const IndexTensor y(labels);
  run_step(
      state, mlp, [&] { return cross_entropy(mlp.forward(x), y); }, mlp_flops(widths, batch), backward);
}

void bm_resnet(State& state, int64_t width, bool backward) {
  const int64_t batch = 32, hw = 32, classes = 10;
  Generator gen(2);
  nn::ResNet18 net(nn::ResNetOptions().width(width).heads({classes}), gen);
  net.train();
  const Tensor x = Tensor::normal({batch, 3, hw, hw}, gen);
  std::vector<int64_t> labels(batch);
  for (auto& l : labels) l = gen.randint(classes);
  const IndexTensor y(labels);
  run_step(
      state, net, [&] { return cross_entropy(net.forward(x)[0], y); }, resnet_flops(width, batch, hw, classes),
      backward);
}

void bm_byte_lm(State& state, bool backward) {
  const int64_t layers = 4, d = 256, heads = 8, d_ff = 1024, vocab = 256, batch = 16, t = 128;
  Generator gen(3);
  nn::ByteLM lm(nn::ByteLMOptions().layers(layers).heads(heads).d_model(d).d_ff(d_ff).max_len(t).vocab(vocab), gen);
  std::vector<int64_t> tok(batch * (t + 1));
  for (auto& v : tok) v = gen.randint(vocab);
  std::vector<int64_t> in, out;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < t; ++i) {
      in.push_back(tok[b * (t + 1) + i]);
      out.push_back(tok[b * (t + 1) + i + 1]);
    }
  }
  const IndexTensor tokens(in, {batch, t}), targets(out, {batch, t});
  run_step(
      state, lm, [&] { return lm.loss(tokens, targets); }, byte_lm_flops(layers, d, heads, d_ff, vocab, batch, t),
      backward);
}

// ---- registration -------------------------------------------------------------------------------

template <class F>
void add(const std::string& name, F f) {
  benchmark::RegisterBenchmark(name.c_str(), f)->UseRealTime()->Unit(benchmark::kMillisecond);
}

const bool registered = [] {
  const char* phases[2] = {"/fwd", "/fwdbwd"};
  for (bool bwd : {false, true})
    add(std::string("nn/mlp/784-256-128-10_b256") + phases[bwd], [=](State& s) { bm_mlp(s, bwd); });
  for (int64_t w : {16, 64}) {
    for (bool bwd : {false, true}) {
      add("nn/resnet18_cifar/w" + std::to_string(w) + "_b32" + phases[bwd], [=](State& s) { bm_resnet(s, w, bwd); });
    }
  }
  for (bool bwd : {false, true}) {
    add(std::string("nn/byte_lm/l4_d256_h8_t128_b16") + phases[bwd], [=](State& s) { bm_byte_lm(s, bwd); });
  }
  return true;
}();

}  // namespace
}  // namespace scalpel

SCALPEL_BENCH_MAIN();
