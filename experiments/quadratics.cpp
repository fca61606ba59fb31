// scalpel-quadratics: the reference implementation's quadratic study (ALGORITHMS.md §5 table).
//
// Least squares with n = 256 samples and p = 300 parameters (over-parameterised, so argmin of the
// main loss is an affine subspace): X = N(0,1) · diag(linspace(1, 10, p)), y = X θ* + 0.05 ε.
// Main loss ½ mean((Xθ − y)²) on mini-batches of 64; auxiliary loss ½‖θ − t‖², t = 10 · N(0, I).
// SGD (lr 1e-3) from θ0 = 0. The bilevel solution is the point of the solution subspace closest to
// t; Bloop approaches it while Mixed trades the two losses off. "eval_main" is the main loss on a
// held-out set drawn like the training set.
#include <cmath>

#include "core/ops.h"
#include "experiments/quadratics_model.h"
#include "experiments/runner/runner.h"
#include "optim/optimizer.h"
#include "optim/surgery/surgeon.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

Tensor main_loss(const Tensor& X, const Tensor& y, const Tensor& theta) { return quadratics_main_loss(X, y, theta); }
Tensor aux_loss(const Tensor& theta, const Tensor& target) { return quadratics_aux_loss(theta, target); }

void run_quadratics(RunContext& ctx) {
  const Config& c = ctx.config();
  const int64_t n = c.extra_int("n", 256), p = c.extra_int("p", 300), B = c.batch_size;
  const QuadraticsProblem pr = make_quadratics(n, p, c.seed);
  Tensor theta = Tensor::zeros({p, 1}).set_requires_grad();
  optim::SGD sgd({theta}, optim::SGDOptions(c.lr));
  auto surgeon = surgery::make_surgeon(ctx.spec().method, surgeon_options(ctx));
  const int64_t batches = n / B;
  const int64_t epochs = c.epochs;
  Generator shuffle(c.seed + 1);
  GradVector g0(p), g1(p), d(p);
  ctx.progress().start(ctx.spec().label, epochs);
  auto evaluate = [&](int64_t epoch) {
    NoGradGuard ng;
    const double tm = main_loss(pr.X, pr.y, theta).item(), ta = aux_loss(theta, pr.target).item();
    const double em = main_loss(pr.X_test, pr.y_test, theta).item();
    ctx.log({{"step", static_cast<double>(epoch * batches)},
             {"epoch", static_cast<double>(epoch)},
             {"train_main", tm},
             {"train_aux", ta},
             {"eval_main", em},
             {"eval_aux", ta}});
    return std::make_pair(tm, ta);
  };
  evaluate(0);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t e = 1; e <= epochs; ++e) {
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[shuffle.randint(i + 1)]);
    for (int64_t b = 0; b < batches; ++b) {
      IndexTensor idx(std::vector<int64_t>(order.begin() + b * B, order.begin() + (b + 1) * B));
      const Tensor l0 = main_loss(index_select(pr.X, 0, idx), index_select(pr.y, 0, idx), theta);
      const Tensor l1 = aux_loss(theta, pr.target);
      std::vector<Tensor> g = grad({l0}, {theta});
      std::vector<Tensor> h = grad({l1}, {theta});
      std::copy(g[0].data(), g[0].data() + p, g0.data());
      std::copy(h[0].data(), h[0].data() + p, g1.data());
      if (!std::isfinite(l0.item()) || !g0.all_finite()) {
        throw NonFiniteLoss("step " + std::to_string((e - 1) * batches + b + 1) + ": main loss is not finite");
      }
      surgeon->combine({&g0, &g1}, {l0.item(), l1.item()}, d);
      d.scatter_to_grads({theta});
      sgd.step();
    }
    if (e % std::max<int64_t>(1, c.eval_every) == 0 || e == epochs) {
      auto [tm, ta] = evaluate(e);
      ctx.progress().update(e, {{"main", tm}, {"aux", ta}});
    }
  }
  ctx.progress().finish("done");
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-quadratics";
  e.summary =
      "The reference implementation's quadratic study: over-parameterised least squares with a ½‖θ−t‖² auxiliary loss.";
  e.example = "scalpel-quadratics --methods mixed,bloop --lambdas logspace:-3:3:10 --out runs/quadratics";
  e.presets["paper"] = {{"epochs", "1000"},
                        {"lr", "0.001"},
                        {"batch-size", "64"},
                        {"eval-every", "10"},
                        {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                        {"lambdas", "logspace:-3:3:10"}};
  e.presets["cpu"] = e.presets["paper"];  // the full recipe takes seconds
  e.options = {int_option("n", "training samples (default 256)", 1, 10000000),
               int_option("p", "parameters (default 300)", 1, 10000000)};
  e.main_label = "main loss ½ mean((Xθ-y)²)";
  e.aux_label = "auxiliary loss ½||θ-t||²";
  e.log_axes = true;
  e.run = run_quadratics;
  return run_main(argc, argv, e);
}
