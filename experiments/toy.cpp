// scalpel-toy: the paper's 2-D conditioning example (§3.3, ALGORITHMS.md §5).
//
// θ = (a, b); main loss ½a², auxiliary loss ½((a−1)² + b²); full-batch gradient descent with
// d = surgeon(g0, g1). The bilevel solution is (0, 0); Mixed (L0 + λ L1) converges to
// (λ/(1+λ), 0) at a rate set by the conditioning (1+λ)/λ, while Bloop's direction (a, λ b) is
// plain GD on ½a² + ½λb², whose minimiser is the bilevel solution for every λ.
// Gradients are exact (full batch), so the default ρ is 1; --rho overrides it.
// Per run: metrics.csv (a, b, both losses, distances to both solutions), summary.json with
// dist_bilevel, dist_mixed and steps_to_tol; after the sweep: trajectories.png in the (a, b) plane.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "core/grad_vector.h"
#include "experiments/runner/metrics.h"
#include "experiments/runner/report.h"
#include "experiments/runner/runner.h"
#include "optim/surgery/surgeon.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

void run_toy(RunContext& ctx) {
  const Config& cfg = ctx.config();
  const double lambda = ctx.spec().lambda;
  const int64_t steps = cfg.steps;
  const double lr = cfg.lr;
  const double tol = cfg.extra_double("tol", 1e-6);
  double a = cfg.extra_double("a0", 1.0), b = cfg.extra_double("b0", 1.0);
  // Exact gradients: project on g0 itself (rho 1), and make eps negligible. With the default
  // eps = 1e-7 the projection stays incomplete near a = 0 and Bloop stalls at a ≈ (λ eps)^(1/3).
  auto surgeon = surgery::make_surgeon(ctx.spec().method, surgeon_options(ctx, {{"rho", "1"}, {"eps", "1e-30"}}));
  GradVector g0(2), g1(2), d(2);
  const double a_mixed = lambda / (1.0 + lambda);
  int64_t steps_to_tol = -1;
  const std::string own = ctx.spec().method == "mixed" ? "mixed" : "bilevel";
  const int64_t log_every = std::max<int64_t>(1, cfg.eval_every);
  ctx.progress().start(ctx.spec().label, steps);
  auto log_row = [&](int64_t step) {
    const double l0 = 0.5 * a * a, l1 = 0.5 * ((a - 1) * (a - 1) + b * b);
    const double db = std::hypot(a, b), dm = std::hypot(a - a_mixed, b);
    ctx.log({{"step", static_cast<double>(step)},
             {"a", a},
             {"b", b},
             {"train_main", l0},
             {"train_aux", l1},
             {"eval_main", l0},
             {"eval_aux", l1},
             {"dist_bilevel", db},
             {"dist_mixed", dm}});
  };
  log_row(0);
  for (int64_t s = 1; s <= steps; ++s) {
    g0.data()[0] = static_cast<float>(a);
    g0.data()[1] = 0.0f;
    g1.data()[0] = static_cast<float>(a - 1);
    g1.data()[1] = static_cast<float>(b);
    surgeon->combine({&g0, &g1}, {0.5 * a * a, 0.5 * ((a - 1) * (a - 1) + b * b)}, d);
    a -= lr * d[0];
    b -= lr * d[1];
    if (!std::isfinite(a) || !std::isfinite(b)) {
      throw NonFiniteLoss("step " + std::to_string(s) + ": the iterate diverged (a=" + std::to_string(a) +
                          ", b=" + std::to_string(b) + "); lower --lr");
    }
    const double dist = own == "mixed" ? std::hypot(a - a_mixed, b) : std::hypot(a, b);
    if (steps_to_tol < 0 && dist < tol) steps_to_tol = s;
    if (s % log_every == 0 || s == steps) log_row(s);
    ctx.progress().update(s, {{"a", a}, {"b", b}});
  }
  ctx.set_final("dist_bilevel", std::hypot(a, b));
  ctx.set_final("dist_mixed", std::hypot(a - a_mixed, b));
  ctx.set_final("steps_to_tol", static_cast<double>(steps_to_tol));
  ctx.set_final("a", a);
  ctx.set_final("b", b);
  ctx.progress().finish("done");
}

void plot_trajectories(const Config& cfg, const std::string& out) {
  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,700 enhanced font 'Sans,11'\n";
  gp << "set output '" << out << "/trajectories.png'\n";
  gp << "set xlabel 'a'\nset ylabel 'b'\nset grid lc rgb '#dddddd'\nset key outside right top\n";
  gp << "set title 'Toy: GD trajectories in the (a, b) plane; bilevel solution at (0, 0)'\n";
  gp << "set datafile separator ','\n";
  gp << "plot ";
  bool first = true;
  size_t mi = 0;
  for (const std::string& m : cfg.methods) {
    for (double asked : cfg.lambdas) {
      const double l = recorded_lambda(m, asked);  // a symmetric method ran once
      if (l != asked && asked != cfg.lambdas.front()) continue;
      const std::string csv = out + "/" + m + "/" + lambda_dirname(l) + "/metrics.csv";  // no --rhos here
      std::ostringstream title;
      title << m << " lambda=" << l;
      gp << (first ? "" : ", \\\n     ") << "'" << csv << "' using 'a':'b' with lines lw 1.5 lc rgb '"
         << method_color(m, mi) << "' title '" << title.str() << "'";
      first = false;
    }
    ++mi;
  }
  gp << ", \\\n     '+' using (0):(0) every ::0::0 with points pt 3 ps 3 lc rgb 'black' title 'bilevel solution'\n";
  const std::string script = out + "/plots/trajectories.gp";
  std::filesystem::create_directories(out + "/plots");
  write_text_atomic(script, gp.str());
  std::string err;
  if (gnuplot_available() && !run_gnuplot(script, &err)) std::cerr << "warning: " << err << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-toy";
  e.summary = "The paper's 2-D conditioning example: full-batch GD on main ½a², auxiliary ½((a-1)²+b²).";
  e.example = "scalpel-toy --methods mixed,pcgrad,dynamic-barrier,bloop --lambdas 0.01,0.1,1 --out runs/toy";
  e.presets["cpu"] = {{"steps", "20000"},
                      {"lr", "0.5"},
                      {"eval-every", "50"},
                      {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                      {"lambdas", "0.01,0.1,1"}};
  e.presets["paper"] = e.presets["cpu"];
  e.options = {real_option("a0", "starting a (default 1)", -1e30, 1e30),
               real_option("b0", "starting b (default 1)", -1e30, 1e30),
               real_option("tol", "distance counted as converged for steps_to_tol (default 1e-6)", 0.0, 1e30)};
  e.main_label = "main loss ½a²";
  e.aux_label = "auxiliary loss ½((a-1)²+b²)";
  e.run = run_toy;
  e.after_sweep = plot_trajectories;
  return run_main(argc, argv, e);
}
