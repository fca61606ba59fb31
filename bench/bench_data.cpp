// Data-pipeline benchmarks: images per second through the DataLoader, for MNIST-format data and
// the Cifar10Mnist composite, with and without augmentation, synchronous and with prefetch; and,
// for scale, the images per second one training step of the smooth-MLP experiment consumes.
//
// Names are "data/<set>/<pipeline>/<mode>":
//   set       mnist: 10,000 synthetic-digits in memory (a U8ImageDataset, exactly what the idx
//             reader returns for real MNIST); composite: synthetic-composite (textures + digits,
//             the same CompositeDataset code path as real Cifar10Mnist, computed per example).
//   pipeline  plain: batches of [256, C, H, W] in [0, 1]; augment: MNIST random_crop(2) +
//             normalize + flatten (the smooth-MLP input), composite random_crop(4) + horizontal
//             flip + normalize (the ResNet input).
//   mode      sync: batches built on the caller's thread; prefetch: a worker thread builds them
//             ahead (the time per batch is what the consumer waits).
// Counter images/s. The target: at least 20x what a training step of the matching
// experiment consumes; "data/consumer/mlp_step" measures that step here (MLP 784-256-128-10,
// batch 256, forward + backward + SGD update from core ops). The composite's consumer, a
// ResNet-18 step, is far slower (see bench_nn), so its ratio is larger still.
//   build/bench/bench_data --benchmark_min_time=0.2
#include <memory>

#include "bench_common.h"
#include "core/ops.h"
#include "data/data.h"

namespace scalpel {
namespace {

using benchmark::State;
using namespace scalpel::data;

constexpr int64_t kBatch = 256;

std::shared_ptr<const Dataset> mnist_set() {
  static auto ds = make_synthetic_digits(Split::Train, SyntheticOptions().seed(1).size(10000));
  return ds;
}

std::shared_ptr<const Dataset> composite_set() {
  static auto ds = make_synthetic_composite(Split::Train, SyntheticOptions().seed(1).size(10000));
  return ds;
}

TransformPtr mnist_augment() { return compose({random_crop(2), normalize(kMnistMean, kMnistStd), flatten()}); }
TransformPtr composite_augment() {
  return compose({random_crop(4), random_horizontal_flip(), normalize(kCifarMean, kCifarStd)});
}

void run_loader(State& state, std::shared_ptr<const Dataset> ds, TransformPtr t, bool prefetch) {
  DataLoader loader(ds, DataLoaderOptions().batch_size(kBatch).seed(1).drop_last(true).prefetch(prefetch).transform(t));
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  Batch b;
  const double s = bench::time_loop(state, [&] {
    if (!loader.next(b)) {
      loader.start_epoch(++epoch);
      loader.next(b);
    }
    benchmark::DoNotOptimize(b.input.data());
  });
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(kBatch) / s);
  state.counters["MB/s_out"] = benchmark::Counter(static_cast<double>(b.input.numel()) * 4.0 / s * 1e-6);
}

void BM_mnist_plain_sync(State& s) { run_loader(s, mnist_set(), nullptr, false); }
void BM_mnist_plain_prefetch(State& s) { run_loader(s, mnist_set(), nullptr, true); }
void BM_mnist_augment_sync(State& s) { run_loader(s, mnist_set(), mnist_augment(), false); }
void BM_mnist_augment_prefetch(State& s) { run_loader(s, mnist_set(), mnist_augment(), true); }
void BM_composite_plain_sync(State& s) { run_loader(s, composite_set(), nullptr, false); }
void BM_composite_plain_prefetch(State& s) { run_loader(s, composite_set(), nullptr, true); }
void BM_composite_augment_sync(State& s) { run_loader(s, composite_set(), composite_augment(), false); }
void BM_composite_augment_prefetch(State& s) { run_loader(s, composite_set(), composite_augment(), true); }

// One smooth-MLP training step (784-256-128-10, batch 256): the consumer the MNIST loader feeds.
void BM_consumer_mlp_step(State& state) {
  Generator g(0);
  std::vector<Tensor> p = {
      Tensor::normal({256, 784}, g, 0, 0.036f).set_requires_grad(),  Tensor::zeros({256}).set_requires_grad(),
      Tensor::normal({128, 256}, g, 0, 0.0625f).set_requires_grad(), Tensor::zeros({128}).set_requires_grad(),
      Tensor::normal({10, 128}, g, 0, 0.088f).set_requires_grad(),   Tensor::zeros({10}).set_requires_grad()};
  DataLoader loader(mnist_set(),
                    DataLoaderOptions().batch_size(kBatch).seed(1).drop_last(true).transform(mnist_augment()));
  loader.start_epoch(0);
  Batch b;
  loader.next(b);  // the step below reuses one batch: only the model's time is measured
  const double s = bench::time_loop(state, [&] {
    Tensor h = relu(linear(b.input, p[0], p[1]));
    h = relu(linear(h, p[2], p[3]));
    Tensor loss = cross_entropy(linear(h, p[4], p[5]), b.labels[0]);
    for (auto& t : p) t.zero_grad();
    loss.backward();
    NoGradGuard ng;
    for (auto& t : p) t.add_(t.grad(), -0.01f);
  });
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(kBatch) / s);
}

BENCHMARK(BM_mnist_plain_sync)->Name("data/mnist/plain/sync")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_mnist_plain_prefetch)->Name("data/mnist/plain/prefetch")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_mnist_augment_sync)->Name("data/mnist/augment/sync")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_mnist_augment_prefetch)->Name("data/mnist/augment/prefetch")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_composite_plain_sync)->Name("data/composite/plain/sync")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_composite_plain_prefetch)
    ->Name("data/composite/plain/prefetch")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_composite_augment_sync)->Name("data/composite/augment/sync")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_composite_augment_prefetch)
    ->Name("data/composite/augment/prefetch")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_consumer_mlp_step)->Name("data/consumer/mlp_step")->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace scalpel

SCALPEL_BENCH_MAIN();
