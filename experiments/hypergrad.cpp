// scalpel-hypergrad: the effect of the hypergradient approximation, on problems with known answers
// (the lecture's "Effect of hypergradient approximation" and "Non-uniqueness"; optim/bilevel/).
//
// Part 1, error against budget: ridge regression with one regularisation weight per feature
// (optim/bilevel/ridge.h, closed-form hypergradient). At a fixed λ, every method's relative error
// ‖ĝ − g*‖/‖g*‖ as its budget K grows: CG and Neumann at θ*(λ), unrolled gradient descent from a
// cold start (θ = 0) and from a warm start (θ = θ*), truncated unrolling (the last K of --truncate-total
// steps from the cold start), T1–T2; and the distance of Neumann(K) to the damped-inverse
// hypergradient with η = 1/(αK), which the lecture says it approximates.
// Part 2, warm against cold start: λ meta-learned by hypergradient descent, the inner problem solved
// by --inner-steps steps of gradient descent either continued from the previous θ (warm) or from
// θ = 0 (cold), the hypergradient unrolled through those steps; then each learned λ evaluated with a
// fresh cold-started inner solve and at the exact θ*(λ).
// Part 3, non-uniqueness: an over-parameterised inner problem (one data point per λ, --points of
// them in --dim dimensions), λ cycled through every point, the inner problem solved to convergence
// each time from the previous θ (warm) or from 0 (cold); the warm iterate fits every point
// (Kaczmarz), the cold one only the current point.
// Outputs: hypergrad_error.csv/.png, warm_cold.csv/.png, kaczmarz.csv/.png, and the finals.
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "core/ops.h"
#include "core/random.h"
#include "experiments/runner/metrics.h"
#include "experiments/runner/report.h"
#include "experiments/runner/runner.h"
#include "optim/bilevel/hypergradient.h"
#include "optim/bilevel/ridge.h"

using namespace scalpel;
using namespace scalpel::experiments;
using namespace scalpel::bilevel;

namespace {

using Vec = std::vector<double>;

Tensor tensor_of(const Vec& v) {
  std::vector<float> f(v.begin(), v.end());
  return Tensor::from_vector(f, {static_cast<int64_t>(f.size())});
}
Vec values(const Tensor& t) {
  const std::vector<float> f = t.to_vector();
  return Vec(f.begin(), f.end());
}
double rel_error(const Vec& a, const Vec& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}
std::string fmt(double v) {
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

void plot(const std::string& out, const std::string& name, const std::string& body, Progress& progress) {
  const std::string warning = write_plot(out, name, body);
  if (!warning.empty()) progress.message(warning);
}

// ---- part 1 -------------------------------------------------------------------------------------

void error_vs_budget(RunContext& ctx, const RidgeToy& toy, const Vec& lambda) {
  const Config& c = ctx.config();
  const Problem p = toy.problem();
  const Vec exact = toy.exact_hypergradient(lambda);
  const Tensor star = tensor_of(toy.solution(lambda)), lam = tensor_of(lambda), zero = Tensor::zeros({toy.dim});
  const double lmax = toy.hessian_eigenvalues(lambda).back(), alpha = 1.0 / lmax;
  const int64_t max_budget = c.extra_int("max-budget", 256), total = c.extra_int("truncate-total", 512);
  // One row per budget, one column per method (t1t2 has budget 1 only: the same value on every row).
  const std::vector<std::string> methods = {"cg",        "neumann",           "unrolled_cold", "unrolled_warm",
                                            "truncated", "neumann_vs_damped", "t1t2"};
  auto err = [&](const Hypergradient& h, const Vec& reference) { return rel_error(values(h.grad[0]), reference); };
  const double t1t2 =
      err(hypergradient(p, {star}, {lam}, HypergradOptions().method(Method::kT1T2).alpha(alpha)), exact);
  std::ostringstream csv;
  csv << "budget";
  for (const std::string& m : methods) csv << ',' << m;
  csv << '\n';
  std::map<std::string, double> last;
  for (int64_t k = 1; k <= max_budget; k *= 2) {
    const auto opt = HypergradOptions().iterations(k).alpha(alpha);
    const Hypergradient neumann = hypergradient(p, {star}, {lam}, HypergradOptions(opt).method(Method::kNeumann));
    const Hypergradient damped =
        hypergradient(p, {star}, {lam}, HypergradOptions().method(Method::kExact).damping(1.0 / (alpha * k)));
    last["cg"] = err(hypergradient(p, {star}, {lam}, HypergradOptions(opt).method(Method::kConjugateGradient)), exact);
    last["neumann"] = err(neumann, exact);
    last["neumann_vs_damped"] = err(neumann, values(damped.grad[0]));
    last["unrolled_cold"] =
        err(hypergradient(p, {zero}, {lam}, HypergradOptions(opt).method(Method::kUnrolled)), exact);
    last["unrolled_warm"] =
        err(hypergradient(p, {star}, {lam}, HypergradOptions(opt).method(Method::kUnrolled)), exact);
    last["truncated"] =
        k <= total ? err(hypergradient(
                             p, {zero}, {lam},
                             HypergradOptions().method(Method::kUnrolled).iterations(total).truncate(k).alpha(alpha)),
                         exact)
                   : NAN;
    last["t1t2"] = t1t2;
    csv << k;
    std::vector<std::pair<std::string, double>> row{{"step", static_cast<double>(k)}};
    for (const std::string& m : methods) {
      csv << ',' << fmt(last[m]);
      row.emplace_back("error_" + m, last[m]);
    }
    csv << '\n';
    ctx.log(row);
    ctx.progress().update(k, {{"cg", last["cg"]}, {"neumann", last["neumann"]}});
  }
  for (const auto& [m, e] : last) {
    if (m != "t1t2") ctx.set_final("error_" + m + "_at_max_budget", e);
  }
  ctx.set_final("error_t1t2", t1t2);
  ctx.set_final("inner_condition_number", lmax / toy.hessian_eigenvalues(lambda).front());
  write_text_atomic(c.out + "/hypergrad_error.csv", csv.str());
  std::ostringstream gp;
  gp << "set logscale xy\nset key bottom left\nset xlabel 'budget K (Hessian-vector products or unrolled steps)'\n"
     << "set ylabel 'relative error of the hypergradient'\nset title 'Ridge toy (d = " << toy.dim << ", condition "
     << fmt(lmax / toy.hessian_eigenvalues(lambda).front()) << "): approximation error against budget'\nf='" << c.out
     << "/hypergrad_error.csv'\nplot ";
  const std::string titles[] = {"CG (at theta*)",
                                "Neumann (at theta*)",
                                "unrolled, cold start (theta = 0)",
                                "unrolled, warm start (theta*)",
                                "truncated: last K of " + std::to_string(total) + " steps",
                                "Neumann vs damped inverse, eta = 1/(alpha K)",
                                "T1-T2 (one step)"};
  for (size_t i = 0; i < methods.size(); ++i) {
    gp << (i ? ", \\\n     " : "") << "f using 1:" << i + 2 << " with linespoints lw 2"
       << (i == 5 ? " dt 2" : (i == 6 ? " dt 3 pt 0" : "")) << " title '" << titles[i] << "'";
  }
  gp << "\n";
  plot(c.out, "hypergrad_error", gp.str(), ctx.progress());
}

// ---- part 2 -------------------------------------------------------------------------------------

void warm_vs_cold(RunContext& ctx, const RidgeToy& toy) {
  const Config& c = ctx.config();
  const Problem p = toy.problem();
  const int64_t outer_steps = c.extra_int("outer-steps", 100), inner_steps = c.extra_int("inner-steps", 10);
  const double outer_lr = c.extra_double("outer-lr", 0.5);
  const double alpha = 1.0 / toy.hessian_eigenvalues(Vec(static_cast<size_t>(toy.dim), 0.0)).back();
  std::ostringstream csv;
  csv << "start,outer_step,val_loss_training_theta,val_loss_exact_theta\n";
  std::map<std::string, Vec> learned;
  for (const std::string start : {"warm", "cold"}) {
    Vec lambda(static_cast<size_t>(toy.dim), 0.0);
    Tensor theta = Tensor::zeros({toy.dim});
    for (int64_t s = 0; s < outer_steps; ++s) {
      const Tensor from = start == "warm" ? theta : Tensor::zeros({toy.dim});
      const Hypergradient h =
          hypergradient(p, {from}, {tensor_of(lambda)},
                        HypergradOptions().method(Method::kUnrolled).iterations(inner_steps).alpha(alpha));
      theta = h.inner[0];
      const Vec g = values(h.grad[0]);
      for (size_t j = 0; j < lambda.size(); ++j) lambda[j] -= outer_lr * g[j];
      csv << start << ',' << s << ',' << fmt(h.outer_loss) << ',' << fmt(toy.outer_loss(toy.solution(lambda))) << '\n';
    }
    learned[start] = lambda;
    // The learned λ under a fresh (cold) inner solve of the same budget, and at convergence.
    const Vec cold_theta =
        values(minimize_inner(p, {Tensor::zeros({toy.dim})}, {tensor_of(lambda)}, inner_steps, alpha)[0]);
    const Vec training_theta = values(theta);
    ctx.set_final(start + "_val_loss_training_theta", toy.outer_loss(training_theta));
    ctx.set_final(start + "_val_loss_reinitialised", toy.outer_loss(cold_theta));
    ctx.set_final(start + "_val_loss_exact_theta", toy.outer_loss(toy.solution(lambda)));
  }
  ctx.set_final("lambda_distance_warm_cold", rel_error(learned["warm"], learned["cold"]));
  write_text_atomic(c.out + "/warm_cold.csv", csv.str());
  std::ostringstream gp;
  gp << "set key top right\nset logscale y\nset xlabel 'outer step (hypergradient descent on lambda)'\n"
     << "set ylabel 'validation loss'\nset title 'Warm- and cold-started inner solves (" << inner_steps
     << " GD steps each)'\nf='" << c.out << "/warm_cold.csv'\n"
     << "plot f using 2:(strcol(1) eq 'warm' ? $3 : 1/0) with lines lw 2 title 'warm: at the training iterate', \\\n"
     << "     f using 2:(strcol(1) eq 'warm' ? $4 : 1/0) with lines lw 2 dt 2 title 'warm: at theta*(lambda)', \\\n"
     << "     f using 2:(strcol(1) eq 'cold' ? $3 : 1/0) with lines lw 2 title 'cold: at the training iterate', \\\n"
     << "     f using 2:(strcol(1) eq 'cold' ? $4 : 1/0) with lines lw 2 dt 2 title 'cold: at theta*(lambda)'\n";
  plot(c.out, "warm_cold", gp.str(), ctx.progress());
}

// ---- part 3 -------------------------------------------------------------------------------------

void kaczmarz(RunContext& ctx) {
  const Config& c = ctx.config();
  const int64_t d = c.extra_int("dim", 20), m = c.extra_int("points", 8), cycles = c.extra_int("cycles", 30);
  Generator gen(c.seed + 7);
  const Tensor X = Tensor::normal({m, d}, gen), y = Tensor::normal({m}, gen);
  auto point_problem = [&](int64_t i) {
    const Tensor xi = X.select(0, i).contiguous(), yi = y.narrow(0, i, 1).contiguous();
    Problem p;
    p.inner_loss = [xi, yi](const std::vector<Tensor>& th, const std::vector<Tensor>&) {
      return mul(square(sub(sum(mul(xi, th[0])), yi.reshape({}))), 0.5f);
    };
    p.outer_loss = p.inner_loss;
    return p;
  };
  auto residuals = [&](const Tensor& theta) {
    NoGradGuard ng;
    const Vec r = values(sub(matmul(X, theta.reshape({d, 1})).reshape({m}), y));
    double worst = 0.0;
    for (double v : r) worst = std::max(worst, std::fabs(v));
    return worst;
  };
  std::ostringstream csv;
  csv << "cycle,warm_max_residual,cold_max_residual\n";
  Tensor warm = Tensor::zeros({d}), cold;
  const Tensor none = Tensor::zeros({1});
  std::vector<Problem> problems;
  std::vector<double> lrs;  // half the inverse curvature of each point's problem
  for (int64_t i = 0; i < m; ++i) {
    problems.push_back(point_problem(i));
    lrs.push_back(0.5 / std::max(1e-12, static_cast<double>(dot(X.select(0, i), X.select(0, i)).item())));
  }
  for (int64_t cyc = 0; cyc < cycles; ++cyc) {
    for (int64_t i = 0; i < m; ++i) {
      warm = minimize_inner(problems[i], {warm}, {none}, 60, lrs[i])[0];
      cold = minimize_inner(problems[i], {Tensor::zeros({d})}, {none}, 60, lrs[i])[0];
    }
    csv << cyc + 1 << ',' << fmt(residuals(warm)) << ',' << fmt(residuals(cold)) << '\n';
  }
  ctx.set_final("kaczmarz_warm_max_residual", residuals(warm));
  ctx.set_final("kaczmarz_cold_max_residual", residuals(cold));
  write_text_atomic(c.out + "/kaczmarz.csv", csv.str());
  std::ostringstream gp;
  gp << "set logscale y\nset key top right\nset xlabel 'cycle through the " << m << " values of lambda'\n"
     << "set ylabel 'largest residual over all points'\nset title 'Non-uniqueness: warm start remembers (Kaczmarz), "
     << "cold start does not (d = " << d << ")'\nf='" << c.out << "/kaczmarz.csv'\n"
     << "plot f using 1:2 with linespoints lw 2 title 'warm start', f using 1:3 with linespoints lw 2 title 'cold "
        "start'\n";
  plot(c.out, "kaczmarz", gp.str(), ctx.progress());
}

void run_hypergrad(RunContext& ctx) {
  const Config& c = ctx.config();
  const RidgeToy toy(c.extra_int("train-size", 50), c.extra_int("val-size", 50), c.extra_int("dim", 20),
                     c.extra_double("spread", 5.0), c.extra_double("noise", 0.5), c.seed + 1);
  const Vec lambda(static_cast<size_t>(toy.dim), c.extra_double("log-lambda", -3.0));
  ctx.progress().start("hypergrad", c.extra_int("max-budget", 256));
  error_vs_budget(ctx, toy, lambda);
  warm_vs_cold(ctx, toy);
  kaczmarz(ctx);
  ctx.progress().finish("done");
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-hypergrad";
  e.summary = "Hypergradient approximations against the exact answer, warm vs cold start, non-uniqueness.";
  e.example = "scalpel-hypergrad --max-budget 256 --out runs/hypergrad";
  e.presets["cpu"] = {{"methods", "bloop"},  {"lambdas", "1"},          {"dim", "20"},          {"train-size", "50"},
                      {"val-size", "50"},    {"spread", "5"},           {"noise", "0.5"},       {"log-lambda", "-3"},
                      {"max-budget", "256"}, {"truncate-total", "512"}, {"outer-steps", "100"}, {"inner-steps", "10"},
                      {"outer-lr", "0.5"},   {"points", "8"},           {"cycles", "30"}};
  e.presets["paper"] = e.presets["cpu"];
  e.options = {int_option("dim", "inner dimension (ridge features; Kaczmarz dimension)", 1, 4096),
               int_option("train-size", "ridge training rows", 1, 1000000),
               int_option("val-size", "ridge validation rows", 1, 1000000),
               real_option("spread", "largest feature scale (ill-conditioning)", 1.0, 1e6),
               real_option("noise", "label noise", 0.0, 1e6),
               real_option("log-lambda", "the log regularisation weight of part 1", -50, 50),
               int_option("max-budget", "largest budget K of part 1 (powers of two up to it)", 1, 1 << 20),
               int_option("truncate-total", "unrolled steps of the truncated method", 1, 1 << 20),
               int_option("outer-steps", "hypergradient-descent steps of part 2", 1, 1000000),
               int_option("inner-steps", "inner GD steps per outer step in part 2", 1, 1000000),
               real_option("outer-lr", "outer learning rate of part 2", 1e-12, 1e6),
               int_option("points", "data points of part 3 (values of lambda)", 1, 100000),
               int_option("cycles", "cycles through the points in part 3", 1, 1000000)};
  e.pareto = false;
  e.run = run_hypergrad;
  return run_main(argc, argv, e);
}
