// Hessian-vector products against two gradient evaluations (the target: an HVP costs at
// most 2.5x two gradients), on an MLP, a small ResNet-18 and a small ByteLM. Each pair runs
// interleaved (time_paired): reference = two forward+backward passes, candidate = one hvp()
// (forward, create_graph backward, backward through the recorded gradient). Counters:
//   hvp_vs_two_grads  candidate / reference time (target <= 2.5)
//   gvp_ms            one more GradientGraph::hvp on an already-recorded gradient (the cost of
//                     each CG / Neumann iteration in optim/bilevel), measured separately.
#include <vector>

#include "bench_common.h"
#include "core/higher_order.h"
#include "core/ops.h"
#include "nn/byte_lm.h"
#include "nn/linear.h"
#include "nn/resnet.h"

using namespace scalpel;

namespace {

std::vector<Tensor> directions(const std::vector<Tensor>& params, uint64_t seed) {
  Generator g(seed);
  std::vector<Tensor> v;
  for (const Tensor& p : params) v.push_back(Tensor::normal(p.shape(), g));
  return v;
}

template <class Loss>
void run_pair(benchmark::State& state, const std::vector<Tensor>& params, Loss loss) {
  const std::vector<Tensor> v = directions(params, 7);
  const auto t = bench::time_paired(
      state,
      [&] {
        for (int k = 0; k < 2; ++k) benchmark::DoNotOptimize(grad({loss()}, params));
      },
      [&] { benchmark::DoNotOptimize(hvp(loss(), params, v)); });
  state.counters["hvp_vs_two_grads"] = t.reference > 0 ? t.candidate / t.reference : 0.0;
  state.counters["two_grads_ms"] = t.reference * 1e3;
  // One more product on a recorded gradient (a CG or Neumann iteration).
  GradientGraph gg(loss(), params);
  gg.hvp(v);
  const int reps = 5;
  const double t0 = bench::detail::now();
  for (int r = 0; r < reps; ++r) benchmark::DoNotOptimize(gg.hvp(v));
  state.counters["gvp_ms"] = bench::detail::seconds_since(t0) / reps * 1e3;
}

void BM_HvpMlp(benchmark::State& state) {
  Generator gen(1);
  nn::Linear l1(nn::LinearOptions(784, 1024), gen), l2(nn::LinearOptions(1024, 1024), gen),
      l3(nn::LinearOptions(1024, 10), gen);
  const Tensor x = Tensor::normal({128, 784}, gen);
  std::vector<int64_t> t(128);
  for (int64_t i = 0; i < 128; ++i) t[i] = i % 10;
  const IndexTensor targets(t);
  std::vector<Tensor> params;
  for (nn::Linear* l : {&l1, &l2, &l3}) {
    for (const Tensor& p : l->parameters()) params.push_back(p);
  }
  run_pair(state, params, [&] { return cross_entropy(l3.forward(tanh(l2.forward(tanh(l1.forward(x))))), targets); });
}
BENCHMARK(BM_HvpMlp)->Name("hvp/mlp_784-1024-1024-10_tanh_b128")->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_HvpResNet(benchmark::State& state) {
  Generator gen(2);
  nn::ResNet18 net(nn::ResNetOptions().width(16), gen);
  const Tensor x = Tensor::normal({16, 3, 32, 32}, gen);
  std::vector<int64_t> t(16);
  for (int64_t i = 0; i < 16; ++i) t[i] = i % 10;
  const IndexTensor targets(t);
  run_pair(state, net.parameters(), [&] { return cross_entropy(net.forward(x)[0], targets); });
}
BENCHMARK(BM_HvpResNet)->Name("hvp/resnet18_w16_b16")->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_HvpByteLM(benchmark::State& state) {
  Generator gen(3);
  nn::ByteLM lm(nn::ByteLMOptions().layers(2).d_model(128).d_ff(512).heads(4).max_len(64), gen);
  std::vector<int64_t> ids(8 * 64), next(8 * 64);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int64_t>((i * 37) % 256);
    next[i] = static_cast<int64_t>((i * 37 + 11) % 256);
  }
  const IndexTensor tokens(ids, {8, 64}), targets(next, {8, 64});
  run_pair(state, lm.parameters(), [&] { return lm.loss(tokens, targets); });
}
BENCHMARK(BM_HvpByteLM)->Name("hvp/bytelm_2x128_T64_b8")->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

SCALPEL_BENCH_MAIN();
