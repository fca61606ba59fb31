// scalpel-multitask: paper §5.3 — a ResNet-18 with two heads on one shared trunk, trained on
// Cifar10Mnist. Main loss: cross-entropy of head 0 on the CIFAR-10 (background) label; auxiliary
// loss: cross-entropy of head 1 on the MNIST digit.
//
// Data: Cifar10Mnist built from <data-dir>/cifar-10-batches-bin and <data-dir>/mnist when present
// (ALGORITHMS.md §5), else synthetic-composite (textures + synthetic digits). One forward pass of
// the trunk per step serves both heads, so BatchNorm statistics are updated once per step, and both
// task gradients come from that one forward. Recipe: SGD Nesterov 0.9 with lr · 1/(1+λ), cosine
// with warm-up, ρ = 0.001 for Bloop (option bloop-rho; the baselines keep ρ = 1 as in the paper). Evaluation per head:
// train_main/eval_main and train_aux/eval_aux (cross-entropy), train_acc_main/eval_acc_main and
// train_acc_aux/eval_acc_aux. --weighting gradnorm measures its gradient norms at the trunk's last
// convolution.
#include <memory>

#include "data/loader.h"
#include "data/registry.h"
#include "experiments/runner/trainer.h"
#include "experiments/study_common.h"
#include "experiments/vision_common.h"
#include "nn/resnet.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

void run(RunContext& ctx) {
  const Config& c = ctx.config();
  const Splits& d = load_splits(c, ctx.progress(), data::resolve_cifar10_mnist);
  Generator init(c.seed);
  nn::ResNet18 net(nn::ResNetOptions().heads({10, 10}).width(c.extra_int("width", 64)), init);
  net.train();
  data::DataLoader loader(d.train, data::DataLoaderOptions()
                                       .batch_size(c.batch_size)
                                       .shuffle(true)
                                       .drop_last(true)
                                       .seed(c.seed)
                                       .prefetch(true)
                                       .transform(cifar_transform(c.extra_bool("augment", true))));
  loader.start_epoch(0);
  TrainTask task;
  task.params = net.parameters();
  task.loss_names = {"ce_background", "ce_digit"};
  task.steps_per_epoch = loader.num_batches();
  // The last shared layer (for --weighting gradnorm): the trunk's last convolution weight.
  for (const auto& [name, p] : net.named_parameters()) {
    if (name.rfind("heads.", 0) != 0 && p.dim() == 4) task.last_shared = {p};
  }
  // The paper's SGD recipe scales the learning rate by 1/(1+λ).
  if (c.extra_bool("lr-lambda-scaling", true)) task.lr_scale = 1.0 / (1.0 + ctx.spec().lambda);
  data::Batch batch;
  task.losses = [&](int64_t) {
    next_batch(loader, batch);
    const std::vector<Tensor> logits = net.forward(batch.input);  // one trunk forward, two heads
    return std::vector<Tensor>{cross_entropy(logits[0], batch.labels[0]), cross_entropy(logits[1], batch.labels[1])};
  };
  const int64_t eval_train = c.extra_int("eval-train-size", 5000);
  task.evaluate = [&]() -> Row {
    const auto tr = evaluate_heads(net, d.train, eval_train);
    const auto te = evaluate_heads(net, d.test, 0);
    return {{"train_main", tr[0].loss},        {"train_aux", tr[1].loss},          {"eval_main", te[0].loss},
            {"eval_aux", te[1].loss},          {"train_acc_main", tr[0].accuracy}, {"train_acc_aux", tr[1].accuracy},
            {"eval_acc_main", te[0].accuracy}, {"eval_acc_aux", te[1].accuracy}};
  };
  const RunState state = RunState().add("model", net).add("loader", loader);
  train_with_state(ctx, task, state);
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-multitask";
  e.summary =
      "Paper §5.3: two-head ResNet-18 on Cifar10Mnist (or synthetic-composite); main loss CE on the background class, "
      "auxiliary loss CE on the digit.";
  e.example = "scalpel-multitask --methods mixed,bloop --lambdas 0.1,1,10 --width 16 --out runs/multitask";
  e.presets["paper"] = {{"epochs", "100"},
                        {"batch-size", "256"},
                        {"lr", "0.1"},
                        {"optimizer", "sgd-nesterov"},
                        {"momentum", "0.9"},
                        {"schedule", "warmup-cosine"},
                        {"warmup-steps", "975"},
                        {"eval-every", "1950"},
                        {"checkpoint-every", "1950"},
                        {"width", "64"},
                        {"bloop-rho", "0.001"},
                        {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                        {"lambdas", "logspace:-3:3:13"}};
  e.presets["cpu"] = {{"steps", "800"},
                      {"batch-size", "64"},
                      {"lr", "0.05"},
                      {"optimizer", "sgd-nesterov"},
                      {"momentum", "0.9"},
                      {"schedule", "warmup-cosine"},
                      {"warmup-steps", "40"},
                      {"eval-every", "200"},
                      {"width", "8"},
                      {"train-size", "10000"},
                      {"test-size", "2000"},
                      {"eval-train-size", "2000"},
                      {"bloop-rho", "0.001"},
                      {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                      {"lambdas", "0.01,0.1,1,10"}};
  e.options = {
      int_option("width", "ResNet-18 base width (64 = standard)", 1, 4096),
      real_option("bloop-rho",
                  "EMA rate for bloop only (default 0.001, the paper's; baselines keep rho 1; --rho overrides all)",
                  1e-12, 1.0),
      bool_option("augment", "random crop + flip (default true)"),
      bool_option("lr-lambda-scaling", "scale the learning rate by 1/(1+lambda) (default true, the paper's recipe)"),
      int_option("eval-train-size", "training examples used for the train_* metrics", 1, 10000000)};
  e.main_label = "cross-entropy, background class (head 0)";
  e.aux_label = "cross-entropy, digit (head 1)";
  use_splits(e, data::resolve_cifar10_mnist);
  e.run = run;
  return run_main(argc, argv, e);
}
