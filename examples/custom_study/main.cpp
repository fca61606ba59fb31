// my-study: a two-layer MLP regressing a smooth target (the main loss) while an auxiliary loss asks
// its outputs to stay near zero on a second, unrelated input set. Everything a bundled study has
// (flags, presets, --methods / --lambdas sweep, fronts, hypervolume, plots, checkpoints, --resume)
// comes from the runner; this file only says what the model, the losses and the evaluation are.
#include <cmath>
#include <vector>

#include "core/ops.h"
#include "experiments/runner/runner.h"
#include "experiments/runner/trainer.h"
#include "experiments/study_common.h"
#include "nn/linear.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

struct Data {
  Tensor x, y, x_aux, x_test, y_test;
};

// y = tanh(2 x · a) on 256 training and 256 test points; x_aux: 256 points from a shifted distribution.
Data make_data(uint64_t seed) {
  Generator gen(seed);
  Data d;
  const Tensor a = Tensor::normal({4, 1}, gen);
  d.x = Tensor::normal({256, 4}, gen);
  d.x_test = Tensor::normal({256, 4}, gen);
  d.x_aux = Tensor::normal({256, 4}, gen, 2.0f, 1.0f);
  d.y = tanh(mul(matmul(d.x, a), 2.0f));
  d.y_test = tanh(mul(matmul(d.x_test, a), 2.0f));
  return d;
}

void run(RunContext& ctx) {
  const Config& c = ctx.config();
  const Data d = make_data(c.seed);
  Generator init(c.seed + 1);
  nn::MLP mlp(nn::MLPOptions({4, c.extra_int("hidden", 32), 1}).activation("tanh"), init);
  auto main_loss = [&](const Tensor& x, const Tensor& y) {
    const Tensor e = mlp.forward(x) - y;
    return mean(mul(e, e));
  };
  auto aux_loss = [&] {
    const Tensor o = mlp.forward(d.x_aux);
    return mean(mul(o, o));
  };
  TrainTask task;
  task.params = mlp.parameters();
  task.loss_names = {"mse", "aux_output_energy"};
  task.steps_per_epoch = 1;  // full batch
  task.losses = [&](int64_t) { return std::vector<Tensor>{main_loss(d.x, d.y), aux_loss()}; };
  task.evaluate = [&]() -> Row {
    NoGradGuard ng;
    const double aux = aux_loss().item();
    return {{"train_main", main_loss(d.x, d.y).item()},
            {"train_aux", aux},
            {"eval_main", main_loss(d.x_test, d.y_test).item()},
            {"eval_aux", aux}};
  };
  const RunState state = RunState().add("model", mlp);
  train_with_state(ctx, task, state);
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "my-study";
  e.summary = "An out-of-tree study: MLP regression (main) against small outputs on a shifted input set (aux).";
  e.example = "my-study --methods mixed,bloop --lambdas 0.1,1,10 --out runs/my-study";
  e.presets["cpu"] = {{"steps", "300"},           {"lr", "0.01"},         {"optimizer", "adam"}, {"eval-every", "50"},
                      {"methods", "mixed,bloop"}, {"lambdas", "0.1,1,10"}};
  e.options = trainer_options();
  e.options.push_back(int_option("hidden", "hidden width of the MLP (default 32)", 1, 4096));
  e.weighting = true;  // trains through train(), so --weighting works too
  e.main_label = "mean squared error";
  e.aux_label = "output energy on the shifted inputs";
  e.run = run;
  return run_main(argc, argv, e);
}
