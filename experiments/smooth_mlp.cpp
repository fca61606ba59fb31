// scalpel-smooth-mlp: paper §5.2 — an MLP 784-256-128-10 (ReLU) trained with cross-entropy as the
// main loss and the log Lipschitz bound Σ_l log σ_max(W_l) as the auxiliary loss.
//
// Data: MNIST from <data-dir>/mnist when present, else the built-in synthetic-digits (the log
// says which). Evaluation rows: train_main / train_acc (cross-entropy and accuracy on a fixed
// training subset), eval_main / eval_acc (the test split), train_aux = eval_aux (the bound,
// computed with extra power iterations on copies of the persistent vectors).
// Presets: `paper` is the paper's recipe (Adam 3e-4, batch 256, 100 epochs, cosine with 5
// warm-up epochs, λ = logspace(-4, 0, 9)); `cpu` (default) runs 4 methods × 5 λ in minutes.
#include <cmath>
#include <memory>

#include "core/dist.h"

#include "data/loader.h"
#include "data/registry.h"
#include "data/transforms.h"
#include "experiments/runner/trainer.h"
#include "experiments/study_common.h"
#include "nn/linear.h"
#include "nn/loss.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

// Cross-entropy and accuracy of `mlp` over (up to `limit` examples of) a dataset.
std::pair<double, double> evaluate_split(nn::MLP& mlp, const std::shared_ptr<const data::Dataset>& ds, int64_t limit) {
  NoGradGuard ng;
  data::DataLoader loader(
      ds, data::DataLoaderOptions()
              .batch_size(1000)
              .shuffle(false)
              .shard(dist::rank(), dist::world_size())  // each rank scores its part
              .transform(data::compose({data::normalize(data::kMnistMean, data::kMnistStd), data::flatten()})));
  loader.start_epoch(0);
  data::Batch b;
  double loss = 0.0, correct = 0.0;
  int64_t n = 0;
  while ((limit <= 0 || n < limit) && loader.next(b)) {
    Tensor logits = mlp.forward(b.input);
    loss += cross_entropy(logits, b.labels[0]).item() * static_cast<double>(b.size());
    const IndexTensor pred = argmax(logits, 1);
    for (int64_t i = 0; i < b.size(); ++i) correct += pred.data[i] == b.labels[0].data[i] ? 1.0 : 0.0;
    n += b.global_size;  // the limit counts rows of every rank
  }
  double sums[2] = {loss, correct};
  dist::allreduce_sum(sums, 2);
  return {sums[0] / static_cast<double>(n), sums[1] / static_cast<double>(n)};
}

void run(RunContext& ctx) {
  const Config& c = ctx.config();
  const Splits& d = load_splits(c, ctx.progress(), data::resolve_mnist);
  Generator init(c.seed);
  nn::MLP mlp(nn::MLPOptions({784, 256, 128, 10}).activation("relu"), init);
  nn::LipschitzBound bound(
      mlp, nn::LipschitzOptions().iterations(c.extra_int("power-iterations", 1)).init_iterations(50), init);
  data::DataLoader loader(
      d.train, data::DataLoaderOptions()
                   .batch_size(c.batch_size)
                   .shuffle(true)
                   .drop_last(true)
                   .seed(c.seed)
                   .shard(dist::rank(), dist::world_size())
                   .prefetch(true)
                   .transform(data::compose({data::normalize(data::kMnistMean, data::kMnistStd), data::flatten()})));
  loader.start_epoch(0);
  TrainTask task;
  task.params = mlp.parameters();
  task.loss_names = {"cross_entropy", "log_lipschitz"};
  task.steps_per_epoch = loader.num_batches();
  data::Batch batch;
  task.losses = [&](int64_t) {
    next_batch(loader, batch);
    Tensor ce = global_batch_mean(cross_entropy(mlp.forward(batch.input), batch.labels[0]), batch);
    return std::vector<Tensor>{ce, bound.forward()};
  };
  const int64_t eval_limit = c.extra_int("eval-train-size", 10000);
  const int64_t eval_iters = c.extra_int("eval-power-iterations", 20);
  task.evaluate = [&]() -> Row {
    auto [trl, tra] = evaluate_split(mlp, d.train, eval_limit);
    auto [tel, tea] = evaluate_split(mlp, d.test, 0);
    const double aux = bound.evaluate(eval_iters);
    return {{"train_main", trl}, {"train_aux", aux}, {"eval_main", tel},
            {"eval_aux", aux},   {"train_acc", tra}, {"eval_acc", tea}};
  };
  const RunState state = RunState().add("model", mlp).add("lipschitz", bound).add("loader", loader);
  train_with_state(ctx, task, state);
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-smooth-mlp";
  e.summary =
      "Paper §5.2: MLP 784-256-128-10 on MNIST (or synthetic-digits); main loss cross-entropy, auxiliary loss the log "
      "Lipschitz bound.";
  e.example =
      "scalpel-smooth-mlp --methods mixed,pcgrad,dynamic-barrier,bloop --lambdas logspace:-4:0:5 --out runs/smooth-mlp";
  e.presets["paper"] = {{"epochs", "100"},
                        {"batch-size", "256"},
                        {"lr", "0.0003"},
                        {"optimizer", "adam"},
                        {"schedule", "warmup-cosine"},
                        {"warmup-steps", "1170"},
                        {"eval-every", "2340"},
                        {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                        {"lambdas", "logspace:-4:0:9"},
                        {"checkpoint-every", "2340"}};
  e.presets["cpu"] = {{"steps", "1200"},
                      {"batch-size", "256"},
                      {"lr", "0.001"},
                      {"optimizer", "adam"},
                      {"schedule", "warmup-cosine"},
                      {"warmup-steps", "60"},
                      {"eval-every", "200"},
                      {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                      {"lambdas", "logspace:-4:0:5"},
                      {"train-size", "20000"},
                      {"test-size", "5000"},
                      {"eval-train-size", "5000"}};
  e.options = {
      int_option("eval-train-size", "training examples used for train_main/train_acc", 1, 10000000),
      int_option("power-iterations", "power-iteration steps per training step (default 1)", 1, 1000),
      int_option("eval-power-iterations", "extra power iterations when evaluating the bound (default 20)", 0, 100000)};
  e.main_label = "cross-entropy";
  e.aux_label = "log Lipschitz bound";
  e.plot_log_x = true;  // cross-entropy spans decades; the log bound can be negative
  use_splits(e, data::resolve_mnist);
  e.run = run;
  return run_main(argc, argv, e);
}
