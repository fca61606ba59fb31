// Per-step cost of gradient surgery: a full training step (forward, losses, per-loss gradients,
// surgeon, optimizer) with Bloop against the same step with Mixed, for the setups of the studies.
//
// Each benchmark times Mixed (the reference) and Bloop (the candidate) interleaved
// (bench::time_paired) and reports `bloop_over_mixed` = time(Bloop) / time(Mixed):
//   step/mlp_lipschitz     MLP 784-256-128-10, batch 256, aux = log Lipschitz bound   (target <= 1.05)
//   step/weight_norm       ResNet-18 CIFAR width 16, batch 32, aux = ½‖θ‖²           (target <= 1.05)
//   step/joint_lm          ByteLM 4 layers, d 256, 8 heads, T 128, batch 16 per corpus (target <= 1.05)
//   step/multitask         ResNet-18 width 16, batch 32, two heads on one trunk
// Mixed is timed twice: per-loss (the default, which also yields the cosine diagnostics) and fused
// (one backward of L0 + λ L1, TrainStepOptions::fused_mixed). For the multi-task step, Bloop needs
// the two task gradients separately, i.e. one more backward through the trunk than fused Mixed;
// `floor` reports that theoretical ratio, (T_fused + T_backward) / T_fused, with T_backward =
// T_fused - T_forward measured in the same run.
#include "bench_common.h"

#include <memory>

#include "core/ops.h"
#include "nn/byte_lm.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/resnet.h"
#include "optim/optimizer.h"
#include "optim/train_step.h"

using namespace scalpel;

namespace {

std::unique_ptr<optim::TrainStep> make_step(const std::vector<Tensor>& params, const std::string& method, bool fused,
                                            double lr) {
  return std::make_unique<optim::TrainStep>(std::make_unique<optim::SGD>(params, optim::SGDOptions(lr).momentum(0.9)),
                                            surgery::make_surgeon(method, surgery::SurgeonOptions().lambda(0.1)),
                                            optim::TrainStepOptions().fused_mixed(fused));
}

// Times Mixed (per-loss and fused) against Bloop on one setup. `losses` runs a forward pass.
void compare(benchmark::State& state, const std::vector<Tensor>& params,
             const std::function<std::vector<Tensor>()>& losses, double flops_per_step) {
  auto mixed = make_step(params, "mixed", false, 1e-4);
  auto fused = make_step(params, "mixed", true, 1e-4);
  auto bloop = make_step(params, "bloop", false, 1e-4);
  // A tiny learning rate keeps the parameters (and so the work) essentially fixed.
  auto run_mixed = [&] { mixed->step(losses()); };
  auto run_fused = [&] { fused->step(losses()); };
  auto run_bloop = [&] { bloop->step(losses()); };
  const auto t = bench::time_paired(state, run_mixed, run_bloop);
  // Fused Mixed and the forward alone, a few repetitions each, outside the benchmark loop.
  double t_fused = 0, t_fwd = 0;
  const int reps = 5;
  run_fused();
  for (int i = 0; i < reps; ++i) {
    const double t0 = bench::detail::now();
    run_fused();
    t_fused += bench::detail::seconds_since(t0) / reps;
    const double t1 = bench::detail::now();
    {
      NoGradGuard ng;
      benchmark::DoNotOptimize(losses());
    }
    t_fwd += bench::detail::seconds_since(t1) / reps;
  }
  state.counters["bloop_over_mixed"] = t.candidate / t.reference;
  state.counters["bloop_over_fused_mixed"] = t.candidate / t_fused;
  state.counters["floor_one_extra_backward"] = (t_fused + (t_fused - t_fwd)) / t_fused;
  state.counters["ms_mixed"] = t.reference * 1e3;
  state.counters["ms_fused_mixed"] = t_fused * 1e3;
  state.counters["ms_bloop"] = t.candidate * 1e3;
  state.counters["ms_forward"] = t_fwd * 1e3;
  bench::set_flop_counters(state, flops_per_step, t.candidate);
}

void BM_MlpLipschitz(benchmark::State& state) {
  Generator gen(0);
  nn::MLP mlp(nn::MLPOptions({784, 256, 128, 10}), gen);
  nn::LipschitzBound bound(mlp, nn::LipschitzOptions(), gen);
  const Tensor x = Tensor::normal({256, 784}, gen);
  std::vector<int64_t> y(256);
  for (int64_t i = 0; i < 256; ++i) y[i] = i % 10;
  const IndexTensor labels(y);
  const double flops = 3.0 * 2.0 * 256 * (784.0 * 256 + 256.0 * 128 + 128.0 * 10);
  compare(
      state, mlp.parameters(),
      [&] {
        return std::vector<Tensor>{cross_entropy(mlp.forward(x), labels), bound.forward()};
      },
      flops);
}
BENCHMARK(BM_MlpLipschitz)->Name("step/mlp_lipschitz")->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);

void BM_WeightNorm(benchmark::State& state) {
  Generator gen(0);
  nn::ResNet18 net(nn::ResNetOptions().width(16), gen);
  net.train();
  const Tensor x = Tensor::normal({32, 3, 32, 32}, gen);
  std::vector<int64_t> y(32);
  for (int64_t i = 0; i < 32; ++i) y[i] = i % 10;
  const IndexTensor labels(y);
  const std::vector<Tensor> params = net.parameters();
  compare(
      state, params,
      [&] {
        return std::vector<Tensor>{cross_entropy(net.forward(x)[0], labels), nn::l2_norm(params)};
      },
      0.0);
}
BENCHMARK(BM_WeightNorm)->Name("step/weight_norm")->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_Multitask(benchmark::State& state) {
  Generator gen(0);
  nn::ResNet18 net(nn::ResNetOptions().width(16).heads({10, 10}), gen);
  net.train();
  const Tensor x = Tensor::normal({32, 3, 32, 32}, gen);
  std::vector<int64_t> y0(32), y1(32);
  for (int64_t i = 0; i < 32; ++i) {
    y0[i] = i % 10;
    y1[i] = (3 * i) % 10;
  }
  const IndexTensor l0(y0), l1(y1);
  compare(
      state, net.parameters(),
      [&] {
        const auto logits = net.forward(x);
        return std::vector<Tensor>{cross_entropy(logits[0], l0), cross_entropy(logits[1], l1)};
      },
      0.0);
}
BENCHMARK(BM_Multitask)->Name("step/multitask")->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_JointLm(benchmark::State& state) {
  Generator gen(0);
  nn::ByteLM lm(nn::ByteLMOptions().layers(4).heads(8).d_model(256).d_ff(1024).max_len(128), gen);
  auto batch = [&](uint64_t seed) {
    Generator g(seed);
    std::vector<int64_t> t(16 * 129);
    for (auto& v : t) v = g.randint(256);
    std::vector<int64_t> tok, tgt;
    for (int64_t b = 0; b < 16; ++b) {
      tok.insert(tok.end(), t.begin() + b * 129, t.begin() + b * 129 + 128);
      tgt.insert(tgt.end(), t.begin() + b * 129 + 1, t.begin() + (b + 1) * 129);
    }
    return std::make_pair(IndexTensor(tok, {16, 128}), IndexTensor(tgt, {16, 128}));
  };
  const auto main_batch = batch(1), aux_batch = batch(2);
  compare(
      state, lm.parameters(),
      [&] {
        return std::vector<Tensor>{lm.loss(main_batch.first, main_batch.second),
                                   lm.loss(aux_batch.first, aux_batch.second)};
      },
      0.0);
}
BENCHMARK(BM_JointLm)->Name("step/joint_lm")->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace

SCALPEL_BENCH_MAIN();
