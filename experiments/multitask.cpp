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
// train_acc_aux/eval_acc_aux, and per task eval_task<k>/eval_acc_task<k>.
//
// --tasks 3 adds a third head: the parity of the digit (even/odd), derived from the digit label.
// Then task 0 stays the main loss, the auxiliary losses are tasks 1 and 2 (the same λ for both),
// and the fronts' auxiliary axis is the mean of their cross-entropies. --methods ...,stl adds one
// single-task baseline run per task (Δm% in the report is measured against them), the symmetric
// methods run once (λ unused), --head-policy says what the heads get, --weighting gradnorm measures
// its gradient norms at the trunk's last convolution. --rotograd puts nn::RotoGrad between the trunk
// and the heads (learned per-task rotations of the features and RotoGrad's magnitude scales on the
// trunk's gradients) under any method; `--methods rotograd` is the published RotoGrad (the wrapper
// with the sum of the task gradients: the trunk gets Σ s_k ∇L_k, head k gets ∇L_k).
#include <memory>
#include <string>
#include <vector>

#include "core/dist.h"
#include "data/loader.h"
#include "data/registry.h"
#include "experiments/runner/trainer.h"
#include "experiments/study_common.h"
#include "experiments/vision_common.h"
#include "nn/conv.h"
#include "nn/resnet.h"
#include "nn/rotograd.h"
#include "optim/head_policy.h"
#include "optim/surgery/aggregator.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

// Task k's head size and name: 0 background class, 1 digit, 2 parity of the digit (--tasks 3).
const std::vector<int64_t> kHeadSizes{10, 10, 2};
const std::vector<std::string> kTaskNames{"background", "digit", "parity"};

int num_tasks(const Config& c) { return static_cast<int>(c.extra_int("tasks", 2)); }

// `--methods rotograd` (this study only): RotoGrad by name, the nn::RotoGrad wrapper switched on
// (run() below) with RotoGrad's own aggregation, the plain sum of the task gradients: the trunk
// gets Σ s_k ∇L_k through the rotations, head k gets ∇L_k. Like the other symmetric methods it runs
// once per sweep and keeps the learning rate. It is registered here, not in optim/, because it
// needs the model: scalpel-aggregate and the other studies do not offer it.
class RotoGradSum final : public surgery::GramAggregator {
 public:
  explicit RotoGradSum(const surgery::SurgeonOptions& o) : GramAggregator("rotograd", o, {}) {}

 protected:
  void weights(const std::vector<double>& /*G*/, int T, std::vector<double>& w) override {
    for (int i = 0; i < T; ++i) w[static_cast<size_t>(i)] = 1.0;
  }
};
const surgery::SurgeonRegistration kRotoGrad("rotograd", {},
                                             "RotoGrad (scalpel-multitask): rotations + scaling, summed",
                                             [](const surgery::SurgeonOptions& o) {
                                               return std::make_unique<RotoGradSum>(o);
                                             });

void run(RunContext& ctx) {
  const Config& c = ctx.config();
  const int K = num_tasks(c);
  const Splits& d = load_splits(c, ctx.progress(), data::resolve_cifar10_mnist);
  Generator init(c.seed);
  const std::vector<int64_t> heads(kHeadSizes.begin(), kHeadSizes.begin() + K);
  nn::ResNet18 net(nn::ResNetOptions().heads(heads).width(c.extra_int("width", 64)), init);
  net.train();
  if (c.extra_bool("sync-batch-norm", false)) nn::sync_batch_norm(net);  // under mpirun
  data::DataLoader loader(d.train, data::DataLoaderOptions()
                                       .batch_size(c.batch_size)
                                       .shuffle(true)
                                       .drop_last(true)
                                       .seed(c.seed)
                                       .shard(dist::rank(), dist::world_size())
                                       .prefetch(true)
                                       .transform(cifar_transform(c.extra_bool("augment", true))));
  loader.start_epoch(0);
  const DeriveLabels derive = K == 3 ? parity_of_labels(1) : DeriveLabels();
  std::unique_ptr<nn::RotoGrad> roto;
  if (c.extra_bool("rotograd", false) || ctx.spec().method == "rotograd") {
    roto = std::make_unique<nn::RotoGrad>(nn::RotoGradOptions(8 * c.extra_int("width", 64), K)
                                              .lr(c.extra_double("rotograd-lr", 0.05))
                                              .burn_in(c.extra_int("rotograd-burn-in", 20)));
  }
  TrainTask task;
  task.params = net.parameters();
  task.buffers = net.buffers();  // BatchNorm running statistics, averaged over ranks under mpirun
  for (int k = 0; k < K; ++k) task.loss_names.push_back("ce_" + kTaskNames[static_cast<size_t>(k)]);
  task.steps_per_epoch = loader.num_batches();
  for (const auto& [name, p] : net.named_parameters()) {
    if (name.rfind("heads.", 0) == 0) {
      task.head_params.push_back(p);  // for --head-policy own / weighted
    } else if (p.dim() == 4) {
      task.last_shared = {p};  // the trunk's last convolution weight (for --weighting gradnorm)
    }
  }
  task.head_policy = c.extra_string("head-policy", "joint");
  // The paper's SGD recipe scales the learning rate by 1/(1+λ), compensating the growth of the
  // λ-weighted sum; the symmetric methods and stl have no λ and keep the rate.
  if (method_takes_lambda(ctx.spec().method) && c.extra_bool("lr-lambda-scaling", true))
    task.lr_scale = 1.0 / (1.0 + ctx.spec().lambda);
  data::Batch batch;
  task.losses = [&](int64_t) {
    next_batch(loader, batch);
    if (derive) derive(batch);
    const std::vector<Tensor> logits = head_logits(net, batch.input, roto.get());  // one trunk forward, K heads
    std::vector<Tensor> losses;
    for (int k = 0; k < K; ++k)
      losses.push_back(global_batch_mean(cross_entropy(logits[static_cast<size_t>(k)], batch.labels[k]), batch));
    if (roto) roto->update(losses);  // before the per-task backward passes: sets this step's scales
    return losses;
  };
  const int64_t eval_train = c.extra_int("eval-train-size", 5000);
  task.evaluate = [&, K]() -> Row {
    const auto tr = evaluate_heads(net, d.train, eval_train, 256, derive, roto.get());
    const auto te = evaluate_heads(net, d.test, 0, 256, derive, roto.get());
    // main = task 0; aux = the mean over tasks 1..K-1 (the fronts' y axis); every task on its own.
    double tr_aux = 0, te_aux = 0;
    for (int k = 1; k < K; ++k) {
      tr_aux += tr[static_cast<size_t>(k)].loss / (K - 1);
      te_aux += te[static_cast<size_t>(k)].loss / (K - 1);
    }
    Row row{{"train_main", tr[0].loss},         {"train_aux", tr_aux},
            {"eval_main", te[0].loss},          {"eval_aux", te_aux},
            {"train_acc_main", tr[0].accuracy}, {"train_acc_aux", tr[1].accuracy},
            {"eval_acc_main", te[0].accuracy},  {"eval_acc_aux", te[1].accuracy}};
    for (int k = 0; k < K; ++k) {
      const std::string t = "task" + std::to_string(k);
      row.emplace_back("eval_" + t, te[static_cast<size_t>(k)].loss);
      row.emplace_back("eval_acc_" + t, te[static_cast<size_t>(k)].accuracy);
      if (roto) {  // the last step's magnitude scale s_k and alignment loss f_k
        row.emplace_back("rotograd_scale" + std::to_string(k), roto->scales()[static_cast<size_t>(k)]);
        row.emplace_back("rotograd_align" + std::to_string(k), roto->alignment_loss()[static_cast<size_t>(k)]);
      }
    }
    return row;
  };
  RunState state = RunState().add("model", net).add("loader", loader);
  if (roto) state.add("rotograd", *roto);
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
      bool_option("sync-batch-norm",
                  "under mpirun: batch statistics over every rank's rows (default false: per rank, as DDP)"),
      bool_option("lr-lambda-scaling", "scale the learning rate by 1/(1+lambda) (default true, the paper's recipe)"),
      int_option("eval-train-size", "training examples used for the train_* metrics", 1, 10000000),
      int_option("tasks", "tasks: 2 (background class, digit) or 3 (+ parity of the digit)", 2, 3),
      bool_option("rotograd",
                  "RotoGrad between trunk and heads: learned per-task rotations of the features and magnitude "
                  "scaling, under any method (default false; --methods rotograd is the published method; docs/mtl.md)"),
      real_option("rotograd-lr", "RotoGrad's rotation step (default 0.05)", 1e-9, 10.0),
      int_option("rotograd-burn-in", "step at which RotoGrad re-takes its gradient-norm reference (default 20)", 0,
                 100000000),
      [] {
        OptionSpec o("head-policy",
                     "what the heads get: joint (default; the method sees every parameter), own (the method "
                     "sees the trunk, head k gets grad L_k) or weighted (head k gets the method's weight times "
                     "grad L_k); docs/mtl.md");
        o.check = [](const std::string& v) {
          try {
            optim::head_policy_from_string(v);
          } catch (const std::invalid_argument& e) {
            throw UsageError(std::string("--head-policy: ") + e.what());
          }
        };
        return o;
      }()};
  e.num_tasks = num_tasks;
  e.task_metrics = [](const Config& c) {
    nlohmann::json m = nlohmann::json::array();
    for (int k = 0; k < num_tasks(c); ++k) {
      m.push_back({{"task", k}, {"column", "eval_acc_task" + std::to_string(k)}, {"higher_is_better", true}});
    }
    return m;
  };
  e.main_label = "cross-entropy, background class (head 0)";
  e.aux_label = "cross-entropy, digit (head 1; with 3 tasks the mean with parity, head 2)";
  use_splits(e, data::resolve_cifar10_mnist);
  e.run = run;
  return run_main(argc, argv, e);
}
