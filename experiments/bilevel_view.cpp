// scalpel-bilevel-view: the paper's main + auxiliary problem as a bilevel program, Bloop next to
// hypergradient methods (optim/bilevel/), on the toy and the quadratics problems.
//
// The simple bilevel problem: minimise L1 over argmin L0. Its hypergradient view (the lecture's
// cold start): the inner variable w solves L0 starting from an anchor λ, w*(λ) = lim GD on L0 from
// λ, and the outer problem minimises L1(w*(λ)) over λ. Written on the one interface of
// optim/bilevel as inner δ, outer λ: L_in(δ, λ) = L0(λ + δ), L_out(δ, λ) = L1(λ + δ). Then
//   implicit (IFT) at an inner optimum: dL1/dλ = ∇L1 − H (H + δI)⁻¹ ∇L1  (H = ∇²L0), i.e. the
//     auxiliary gradient with every direction the main loss curves in projected out, where Bloop
//     projects out one direction (the main gradient's EMA);
//   unrolled: reverse mode through K steps of gradient descent on L0 from λ.
// Methods, all full batch with exact gradients: Bloop (ρ = 1) and Mixed over λ, as in the studies;
// "hypergrad-cg": w ← w − β (that IFT hypergradient at w, by --cg-iterations CG steps with
// --damping), then --inner-steps GD steps on L0 (warm start); "hypergrad-unrolled": λ ← λ − β times
// the unrolled hypergradient through --unroll-steps GD steps from λ (cold start), w = those steps'
// end point. Cost is counted in gradient evaluations, an HVP as two.
// Outputs: bilevel_view.csv (every logged point), bilevel_view_<problem>.png (distance to the
// bilevel solution against cost), and per method the final main loss, auxiliary loss and distance.
#include <Eigen/Dense>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "core/grad_vector.h"
#include "core/ops.h"
#include "experiments/quadratics_model.h"
#include "experiments/runner/metrics.h"
#include "experiments/runner/report.h"
#include "experiments/runner/runner.h"
#include "optim/bilevel/hypergradient.h"
#include "optim/surgery/surgeon.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

using Vec = std::vector<double>;

// One problem: θ [p] -> L0, L1 as differentiable ops, its start, step size and bilevel solution.
struct Task {
  std::string name;
  int64_t p = 0;
  std::function<Tensor(const Tensor&)> main, aux;
  Tensor start;
  Vec solution;
  double lr = 0.0;
};

Task toy_task() {
  Task t;
  t.name = "toy";
  t.p = 2;
  t.main = [](const Tensor& th) { return mul(square(th.narrow(0, 0, 1)).sum(), 0.5f); };
  t.aux = [](const Tensor& th) {
    const Tensor shift = Tensor::from_vector({1.0f, 0.0f}, {2});
    return mul(sum(square(sub(th, shift))), 0.5f);
  };
  t.start = Tensor::from_vector({1.0f, 1.0f}, {2});
  t.solution = {0.0, 0.0};
  t.lr = 0.5;
  return t;
}

Task quadratics_task(uint64_t seed) {
  const QuadraticsProblem pr = make_quadratics(256, 300, seed);
  Task t;
  t.name = "quadratics";
  t.p = 300;
  t.main = [pr](const Tensor& th) { return quadratics_main_loss(pr.X, pr.y, th.reshape({300, 1})); };
  t.aux = [pr](const Tensor& th) { return quadratics_aux_loss(th.reshape({300, 1}), pr.target); };
  t.start = Tensor::zeros({300});
  t.lr = 1e-3;
  // The point of {θ : Xθ = y} closest to t, in double: t − Xᵀ (X Xᵀ)⁻¹ (X t − y).
  auto to_mat = [](const Tensor& m) {
    const std::vector<float> v = m.contiguous().to_vector();
    Eigen::MatrixXd out(m.size(0), m.size(1));
    for (int64_t i = 0; i < m.size(0); ++i)
      for (int64_t j = 0; j < m.size(1); ++j) out(i, j) = v[static_cast<size_t>(i * m.size(1) + j)];
    return out;
  };
  const Eigen::MatrixXd X = to_mat(pr.X), y = to_mat(pr.y), target = to_mat(pr.target);
  const Eigen::MatrixXd sol = target - X.transpose() * (X * X.transpose()).ldlt().solve(X * target - y);
  t.solution.assign(sol.data(), sol.data() + sol.size());
  return t;
}

double distance(const Tensor& th, const Vec& sol) {
  const std::vector<float> v = th.to_vector();
  double s = 0.0;
  for (size_t i = 0; i < sol.size(); ++i) s += (v[i] - sol[i]) * (v[i] - sol[i]);
  return std::sqrt(s);
}

std::string fmt(double v) {
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

struct Log {
  std::ostringstream csv;
  RunContext* ctx;
  std::map<std::string, std::array<double, 4>> finals;  // method label -> main, aux, dist, evals
  void row(const Task& t, const std::string& label, int64_t step, double evals, const Tensor& th) {
    NoGradGuard ng;
    const double l0 = t.main(th).item(), l1 = t.aux(th).item(), d = distance(th, t.solution);
    csv << t.name << ',' << label << ',' << step << ',' << evals << ',' << fmt(l0) << ',' << fmt(l1) << ',' << fmt(d)
        << '\n';
    finals[t.name + "/" + label] = {l0, l1, d, evals};
  }
};

void check_finite(const Tensor& th, const std::string& what) {
  for (float v : th.to_vector()) {
    if (!std::isfinite(v)) throw NonFiniteLoss(what + ": the iterate diverged; lower the step size");
  }
}

// Bloop / Mixed, full batch, exact gradients (ρ = 1).
void run_surgeon(const Task& t, const std::string& method, double lambda, int64_t steps, int64_t every, Log& log) {
  auto surgeon = surgery::make_surgeon(method, surgery::SurgeonOptions().lambda(lambda).rho(1.0).eps(1e-30));
  const std::string label = method + " lambda=" + fmt(lambda);
  Tensor th = t.start.clone();
  GradVector g0(t.p), g1(t.p), d(t.p);
  log.row(t, label, 0, 0, th);
  for (int64_t s = 1; s <= steps; ++s) {
    Tensor leaf = th.detach().clone();
    leaf.set_requires_grad(true);
    const Tensor l0 = t.main(leaf), l1 = t.aux(leaf);
    const Tensor a = grad({l0}, {leaf})[0], b = grad({l1}, {leaf})[0];
    std::copy(a.data(), a.data() + t.p, g0.data());
    std::copy(b.data(), b.data() + t.p, g1.data());
    surgeon->combine({&g0, &g1}, {l0.item(), l1.item()}, d);
    NoGradGuard ng;
    th = sub(th,
             mul(Tensor::from_vector(std::vector<float>(d.data(), d.data() + t.p), {t.p}), static_cast<float>(t.lr)));
    check_finite(th, label);
    if (s % every == 0 || s == steps) log.row(t, label, s, 2.0 * s, th);
  }
}

bilevel::Problem anchored(const Task& t) {
  bilevel::Problem p;
  p.inner_loss = [t](const std::vector<Tensor>& delta, const std::vector<Tensor>& lam) {
    return t.main(add(lam[0], delta[0]));
  };
  p.outer_loss = [t](const std::vector<Tensor>& delta, const std::vector<Tensor>& lam) {
    return t.aux(add(lam[0], delta[0]));
  };
  return p;
}

// Warm start: an IFT hypergradient step on the anchor w, then inner GD steps on L0.
void run_hypergrad_cg(const Task& t, const Config& c, int64_t steps, int64_t every, Log& log) {
  const int64_t cg = c.extra_int("cg-iterations", 5), inner = c.extra_int("inner-steps", 1);
  const double beta = c.extra_double("outer-lr", 1.0) * t.lr, damping = c.extra_double("damping", 1e-6);
  const std::string label = "hypergrad-cg K=" + std::to_string(cg);
  const bilevel::Problem p = anchored(t);
  const Tensor zero = Tensor::zeros({t.p});
  Tensor w = t.start.clone();
  double evals = 0.0;
  log.row(t, label, 0, 0, w);
  for (int64_t s = 1; s <= steps; ++s) {
    const bilevel::Hypergradient h = bilevel::hypergradient(
        p, {zero}, {w},
        bilevel::HypergradOptions().method(bilevel::Method::kConjugateGradient).iterations(cg).damping(damping));
    evals += 1.0 + 2.0 * static_cast<double>(h.hvps);  // ∇L1, then the HVPs (2 each)
    {
      NoGradGuard ng;
      w = sub(w, mul(h.grad[0], static_cast<float>(beta)));
    }
    {
      const Tensor delta = bilevel::minimize_inner(p, {zero}, {w}, inner, t.lr)[0];  // δ after `inner` steps
      NoGradGuard ng;
      w = add(w, delta);
    }
    evals += static_cast<double>(inner);
    check_finite(w, label);
    if (s % every == 0 || s == steps) log.row(t, label, s, evals, w);
  }
}

// Cold start: the anchor λ by the unrolled hypergradient; w = the unrolled steps' end point.
void run_hypergrad_unrolled(const Task& t, const Config& c, int64_t steps, int64_t every, Log& log) {
  const int64_t K = c.extra_int("unroll-steps", 10);
  const double beta = c.extra_double("outer-lr", 1.0) * t.lr;
  const std::string label = "hypergrad-unrolled K=" + std::to_string(K);
  const bilevel::Problem p = anchored(t);
  const Tensor zero = Tensor::zeros({t.p});
  Tensor lam = t.start.clone();
  double evals = 0.0;
  log.row(t, label, 0, 0, lam);
  for (int64_t s = 1; s <= steps; ++s) {
    const bilevel::Hypergradient h = bilevel::hypergradient(
        p, {zero}, {lam}, bilevel::HypergradOptions().method(bilevel::Method::kUnrolled).iterations(K).alpha(t.lr));
    evals += 3.0 * static_cast<double>(K) + 1.0;  // K recorded gradients, their backward (~2 each), ∇L1
    NoGradGuard ng;
    const Tensor w = add(lam, h.inner[0]);
    lam = sub(lam, mul(h.grad[0], static_cast<float>(beta)));
    check_finite(lam, label);
    if (s % every == 0 || s == steps) log.row(t, label, s, evals, w);
  }
}

std::vector<double> parse_list(const std::string& text, const std::string& flag) {
  try {
    return parse_lambdas(text, flag);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

void plot(const Config& c, const std::string& problem, const std::vector<std::string>& labels, Progress& progress) {
  std::ostringstream gp;
  gp << "set logscale xy\nset key outside right\nset yrange [1e-12:*]\n"
     << "set xlabel 'gradient evaluations (an HVP counts as two)'\n"
     << "set ylabel 'distance to the bilevel solution'\nset title 'Bilevel view of main + auxiliary: " << problem
     << "'\nf='" << c.out << "/bilevel_view.csv'\nplot ";
  for (size_t k = 0; k < labels.size(); ++k) {
    gp << (k ? ", \\\n     " : "") << "f using ($4 > 0 ? $4 : 1/0):(strcol(1) eq '" << problem << "' && strcol(2) eq '"
       << labels[k] << "' ? $7 : 1/0) with lines lw 2 title '" << labels[k] << "'";
  }
  gp << "\n";
  const std::string warning = write_plot(c.out, "bilevel_view_" + problem, gp.str());
  if (!warning.empty()) progress.message(warning);
}

void run_view(RunContext& ctx) {
  const Config& c = ctx.config();
  Log log;
  log.ctx = &ctx;
  log.csv << "problem,method,step,gradient_evals,train_main,train_aux,dist_bilevel\n";
  const std::string which = c.extra_string("problems", "toy,quadratics");
  std::vector<Task> tasks;
  if (which.find("toy") != std::string::npos) tasks.push_back(toy_task());
  if (which.find("quadratics") != std::string::npos) tasks.push_back(quadratics_task(c.seed));
  if (tasks.empty()) throw UsageError("--problems: expected toy, quadratics or both, got '" + which + "'");
  const Vec bloop = parse_list(c.extra_string("bloop-lambdas", "0.1,1"), "--bloop-lambdas");
  const Vec mixed = parse_list(c.extra_string("mixed-lambdas", "0.01,0.1"), "--mixed-lambdas");
  ctx.progress().start("bilevel-view", static_cast<int64_t>(tasks.size()));
  int64_t done = 0;
  for (const Task& t : tasks) {
    const int64_t steps = c.extra_int(t.name + "-steps", t.name == "toy" ? 200 : 4000);
    const int64_t outer = c.extra_int(t.name + "-outer-steps", t.name == "toy" ? 100 : 160);
    const int64_t every = std::max<int64_t>(1, steps / 100), outer_every = std::max<int64_t>(1, outer / 100);
    std::vector<std::string> labels;
    for (double l : bloop) {
      run_surgeon(t, "bloop", l, steps, every, log);
      labels.push_back("bloop lambda=" + fmt(l));
    }
    for (double l : mixed) {
      run_surgeon(t, "mixed", l, steps, every, log);
      labels.push_back("mixed lambda=" + fmt(l));
    }
    run_hypergrad_cg(t, c, outer, outer_every, log);
    labels.push_back("hypergrad-cg K=" + std::to_string(c.extra_int("cg-iterations", 5)));
    run_hypergrad_unrolled(t, c, outer, outer_every, log);
    labels.push_back("hypergrad-unrolled K=" + std::to_string(c.extra_int("unroll-steps", 10)));
    ctx.progress().update(++done, {});
    write_text_atomic(c.out + "/bilevel_view.csv", log.csv.str());
    plot(c, t.name, labels, ctx.progress());
  }
  std::ostringstream table;
  table << "problem/method,train_main,train_aux,dist_bilevel,gradient_evals\n";
  for (const auto& [k, v] : log.finals) {
    table << k << ',' << fmt(v[0]) << ',' << fmt(v[1]) << ',' << fmt(v[2]) << ',' << fmt(v[3]) << '\n';
    ctx.set_final(k + " dist_bilevel", v[2]);
    ctx.set_final(k + " train_main", v[0]);
    ctx.set_final(k + " gradient_evals", v[3]);
  }
  write_text_atomic(c.out + "/bilevel_view_final.csv", table.str());
  ctx.log({{"step", 0.0}});
  ctx.progress().finish("done");
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-bilevel-view";
  e.summary = "Bloop next to hypergradient methods on the bilevel view of main + auxiliary (toy, quadratics).";
  e.example = "scalpel-bilevel-view --problems toy,quadratics --out runs/bilevel-view";
  e.presets["cpu"] = {{"methods", "bloop"},
                      {"lambdas", "1"},
                      {"problems", "toy,quadratics"},
                      {"bloop-lambdas", "0.1,1"},
                      {"mixed-lambdas", "0.01,0.1"},
                      {"cg-iterations", "20"},
                      {"damping", "1e-6"},
                      {"inner-steps", "10"},
                      {"unroll-steps", "100"},
                      {"outer-lr", "1"},
                      {"toy-steps", "200"},
                      {"toy-outer-steps", "100"},
                      {"quadratics-steps", "4000"},
                      {"quadratics-outer-steps", "160"}};
  e.presets["paper"] = e.presets["cpu"];
  e.options = {
      OptionSpec("problems", "toy, quadratics or both (comma-separated)"),
      OptionSpec("bloop-lambdas", "λ values of the Bloop runs (list or logspace:A:B:N)"),
      OptionSpec("mixed-lambdas", "λ values of the Mixed runs"),
      int_option("cg-iterations", "CG iterations of hypergrad-cg", 0, 100000),
      real_option("damping", "damping δ of hypergrad-cg's (H + δI)", 0.0, 1e12),
      int_option("inner-steps", "GD steps on L0 after each hypergrad-cg step", 0, 100000),
      int_option("unroll-steps", "unrolled GD steps of hypergrad-unrolled", 1, 100000),
      real_option("outer-lr", "outer step size β of both hypergradient methods, in units of the problem's step size",
                  1e-12, 1e6),
      int_option("toy-steps", "Bloop / Mixed steps on the toy", 1, 100000000),
      int_option("toy-outer-steps", "outer steps of the hypergradient methods on the toy", 1, 100000000),
      int_option("quadratics-steps", "Bloop / Mixed steps on the quadratics", 1, 100000000),
      int_option("quadratics-outer-steps", "outer steps on the quadratics", 1, 100000000)};
  e.pareto = false;
  e.run = run_view;
  return run_main(argc, argv, e);
}
