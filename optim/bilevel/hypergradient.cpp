#include "optim/bilevel/hypergradient.h"

#include <Eigen/Dense>
#include <stdexcept>

#include "core/higher_order.h"
#include "core/ops.h"

namespace scalpel {
namespace bilevel {

namespace {

using Vecs = std::vector<Tensor>;

// ---- vectors of tensors (no history) -----------------------------------------------------------

Vecs leaves(const Vecs& values) {
  Vecs out;
  for (const Tensor& t : values) {
    Tensor c = t.detach().clone();
    c.set_requires_grad(true);
    out.push_back(c);
  }
  return out;
}

Vecs constants(const Vecs& values) {
  Vecs out;
  for (const Tensor& t : values) out.push_back(t.detach().clone());
  return out;
}

double dot(const Vecs& a, const Vecs& b) {
  NoGradGuard ng;
  double s = 0.0;
  for (size_t k = 0; k < a.size(); ++k) s += scalpel::dot(a[k], b[k]).item();
  return s;
}

// a + s * b
Vecs axpy(const Vecs& a, double s, const Vecs& b) {
  NoGradGuard ng;
  Vecs out;
  for (size_t k = 0; k < a.size(); ++k) out.push_back(add(a[k], mul(b[k], static_cast<float>(s))));
  return out;
}

Vecs scaled(const Vecs& a, double s) {
  NoGradGuard ng;
  Vecs out;
  for (const Tensor& t : a) out.push_back(mul(t, static_cast<float>(s)));
  return out;
}

Vecs detached(const Vecs& a) {
  Vecs out;
  for (const Tensor& t : a) out.push_back(t.detach());
  return out;
}

Tensor scalar_loss(const Objective& f, const Vecs& inner, const Vecs& outer, const char* which) {
  if (!f) throw std::invalid_argument(std::string("bilevel::hypergradient: the ") + which + " is not set");
  Tensor l = f(inner, outer);
  if (!l.defined() || l.numel() != 1) {
    throw std::invalid_argument(std::string("bilevel::hypergradient: the ") + which + " must return a scalar, got " +
                                (l.defined() ? "shape " + shape_str(l.shape()) : std::string("an undefined tensor")));
  }
  return l;
}

// (H + δI) p through the recorded inner gradient.
Vecs damped_hvp(const GradientGraph& gg, const Vecs& p, double damping) {
  Vecs hp = detached(gg.hvp(p));
  return damping != 0.0 ? axpy(hp, damping, p) : hp;
}

double relative_residual(const GradientGraph& gg, const Vecs& p, const Vecs& v, double damping) {
  const double vv = dot(v, v);
  if (vv == 0.0) return 0.0;
  const Vecs r = axpy(v, -1.0, damped_hvp(gg, p, damping));
  return std::sqrt(dot(r, r) / vv);
}

int64_t numel(const Vecs& a) {
  int64_t n = 0;
  for (const Tensor& t : a) n += t.numel();
  return n;
}

// (H + δI)⁻¹ v, dense, in double: H column by column from unit-vector HVPs.
Vecs exact_solve(const GradientGraph& gg, const Vecs& v, double damping, int64_t max_n, int64_t& hvps) {
  const int64_t n = numel(v);
  if (n > max_n) {
    throw std::invalid_argument("bilevel::hypergradient: method exact materialises the " + std::to_string(n) + "x" +
                                std::to_string(n) + " Hessian, more than max_exact = " + std::to_string(max_n) +
                                " coordinates allow (use cg or neumann)");
  }
  Eigen::MatrixXd H(n, n);
  Vecs e;
  for (const Tensor& t : v) e.push_back(Tensor::zeros(t.shape()));
  int64_t col = 0;
  for (size_t k = 0; k < e.size(); ++k) {
    for (int64_t i = 0; i < e[k].numel(); ++i, ++col) {
      e[k].data()[i] = 1.0f;
      const Vecs h = gg.hvp(e);
      ++hvps;
      e[k].data()[i] = 0.0f;
      int64_t row = 0;
      for (const Tensor& t : h) {
        const std::vector<float> values = t.to_vector();
        for (float x : values) H(row++, col) = x;
      }
    }
  }
  H = 0.5 * (H + H.transpose());  // symmetric up to rounding
  H.diagonal().array() += damping;
  Eigen::VectorXd b(n);
  int64_t row = 0;
  for (const Tensor& t : v) {
    for (float x : t.to_vector()) b(row++) = x;
  }
  const Eigen::VectorXd x = H.completeOrthogonalDecomposition().solve(b);  // min-norm when singular
  Vecs out;
  row = 0;
  for (const Tensor& t : v) {
    std::vector<float> values(static_cast<size_t>(t.numel()));
    for (float& y : values) y = static_cast<float>(x(row++));
    out.push_back(Tensor::from_vector(values, t.shape()));
  }
  return out;
}

// Also sets `residual` to the recursive residual ‖r‖/‖v‖ it stops at (no extra HVP).
Vecs cg_solve(const GradientGraph& gg, const Vecs& v, const HypergradOptions& o, int64_t& hvps, double& residual) {
  Vecs x = scaled(v, 0.0), r = constants(v), p = constants(v);
  double rs = dot(r, r);
  const double vv = rs;
  const double stop = o.tolerance() * o.tolerance() * rs;
  for (int64_t k = 0; k < o.iterations() && rs > stop && rs > 0.0; ++k) {
    const Vecs ap = damped_hvp(gg, p, o.damping());
    ++hvps;
    const double pap = dot(p, ap);
    if (!(pap > 0.0)) break;  // not positive definite along p (add damping): keep the iterate
    const double a = rs / pap;
    x = axpy(x, a, p);
    r = axpy(r, -a, ap);
    const double rs_new = dot(r, r);
    p = axpy(r, rs_new / rs, p);
    rs = rs_new;
  }
  residual = vv > 0.0 ? std::sqrt(rs / vv) : 0.0;
  return x;
}

// α Σ_{k=0}^{K} (I − α(H + δI))^k v by the recurrence p_0 = αv, p_k = αv + p_{k-1} − α(H + δI)p_{k-1}.
Vecs neumann_solve(const GradientGraph& gg, const Vecs& v, const HypergradOptions& o, int64_t& hvps) {
  const Vecs av = scaled(v, o.alpha());
  Vecs p = av;
  for (int64_t k = 0; k < o.iterations(); ++k) {
    const Vecs hp = damped_hvp(gg, p, o.damping());
    ++hvps;
    p = axpy(axpy(p, 1.0, av), -o.alpha(), hp);
  }
  return p;
}

void check_options(const HypergradOptions& o) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("bilevel::hypergradient: " + what); };
  if (o.iterations() < 0) bad("iterations must be >= 0, got " + std::to_string(o.iterations()));
  if (o.truncate() < 0 || o.truncate() > o.iterations()) {
    bad("truncate must be in [0, iterations = " + std::to_string(o.iterations()) + "], got " +
        std::to_string(o.truncate()));
  }
  if (!(o.alpha() > 0.0) || !std::isfinite(o.alpha()))
    bad("alpha must be finite and > 0, got " + std::to_string(o.alpha()));
  if (!(o.damping() >= 0.0) || !std::isfinite(o.damping())) {
    bad("damping must be finite and >= 0, got " + std::to_string(o.damping()));
  }
  if (!(o.tolerance() >= 0.0)) bad("tolerance must be >= 0, got " + std::to_string(o.tolerance()));
}

Hypergradient unrolled(const Problem& problem, const Vecs& inner, const Vecs& outer, const HypergradOptions& o) {
  Hypergradient h;
  const Vecs lam = leaves(outer);
  const int64_t K = o.iterations(), T = o.truncate() > 0 ? o.truncate() : K;
  Vecs theta = constants(inner);
  for (int64_t k = 0; k < K; ++k) {
    const bool differentiate = k >= K - T;
    if (k == K - T || !differentiate) {  // a constant start: a fresh leaf to differentiate L_in at
      for (Tensor& t : theta) {
        t = t.detach();
        t.set_requires_grad(true);
      }
    }
    EnableGradGuard eg;
    const Tensor l = scalar_loss(problem.inner_loss, theta, differentiate ? lam : detached(lam), "inner loss");
    const Vecs g = grad({l}, theta, GradOptions().set_create_graph(differentiate).set_allow_unused(true));
    Vecs next;
    for (size_t j = 0; j < theta.size(); ++j) {
      next.push_back(sub(differentiate ? theta[j] : theta[j].detach(), mul(g[j], static_cast<float>(o.alpha()))));
    }
    theta = differentiate ? next : detached(next);
    if (differentiate) ++h.hvps;
  }
  EnableGradGuard eg;
  const Tensor lout = scalar_loss(problem.outer_loss, theta, lam, "outer loss");
  h.outer_loss = lout.item();
  h.grad =
      lout.requires_grad() ? grad({lout}, lam, GradOptions().set_allow_unused(true)) : scaled(constants(outer), 0.0);
  h.inner = constants(theta);
  return h;
}

}  // namespace

Method parse_method(const std::string& name) {
  if (name == "exact") return Method::kExact;
  if (name == "cg") return Method::kConjugateGradient;
  if (name == "neumann") return Method::kNeumann;
  if (name == "t1t2") return Method::kT1T2;
  if (name == "unrolled") return Method::kUnrolled;
  throw std::invalid_argument("bilevel: unknown hypergradient method '" + name +
                              "' (expected exact, cg, neumann, t1t2 or unrolled)");
}

std::string method_name(Method m) {
  switch (m) {
    case Method::kExact:
      return "exact";
    case Method::kConjugateGradient:
      return "cg";
    case Method::kNeumann:
      return "neumann";
    case Method::kT1T2:
      return "t1t2";
    case Method::kUnrolled:
      return "unrolled";
  }
  return "?";
}

Hypergradient hypergradient(const Problem& problem, const std::vector<Tensor>& inner, const std::vector<Tensor>& outer,
                            const HypergradOptions& options) {
  check_options(options);
  if (options.method() == Method::kUnrolled) return unrolled(problem, inner, outer, options);
  Hypergradient h;
  const Vecs theta = leaves(inner), lam = leaves(outer);
  EnableGradGuard eg;
  // v = ∂L_out/∂θ and the direct term ∂L_out/∂λ.
  Vecs wrt = theta;
  wrt.insert(wrt.end(), lam.begin(), lam.end());
  const Tensor lout = scalar_loss(problem.outer_loss, theta, lam, "outer loss");
  h.outer_loss = lout.item();
  Vecs g = lout.requires_grad() ? grad({lout}, wrt, GradOptions().set_allow_unused(true)) : scaled(constants(wrt), 0.0);
  const Vecs v(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(theta.size()));
  const Vecs direct(g.begin() + static_cast<std::ptrdiff_t>(theta.size()), g.end());
  // p ≈ (H + δI)⁻¹ v through the recorded inner gradient.
  const GradientGraph gg(scalar_loss(problem.inner_loss, theta, lam, "inner loss"), theta);
  Vecs p;
  switch (options.method()) {
    case Method::kExact:
      p = exact_solve(gg, v, options.damping(), options.max_exact(), h.hvps);
      break;
    case Method::kConjugateGradient:
      p = cg_solve(gg, v, options, h.hvps, h.residual);
      break;
    case Method::kNeumann:
      p = neumann_solve(gg, v, options, h.hvps);
      break;
    case Method::kT1T2:
      p = scaled(v, options.alpha());
      break;
    case Method::kUnrolled:
      break;
  }
  // CG knows its residual; the others pay one HVP to state theirs.
  if (options.method() != Method::kConjugateGradient) h.residual = relative_residual(gg, p, v, options.damping());
  // dL_out/dλ = ∂L_out/∂λ − Jᵀ p, with Jᵀ p = d<∇θ L_in, p>/dλ.
  const Vecs jp = gg.vjp(p, lam);
  h.grad = axpy(detached(direct), -1.0, detached(jp));
  h.inner = constants(inner);
  return h;
}

std::vector<Tensor> minimize_inner(const Problem& problem, std::vector<Tensor> inner, const std::vector<Tensor>& outer,
                                   int64_t steps, double lr) {
  Vecs theta = leaves(inner);
  const Vecs lam = constants(outer);
  for (int64_t k = 0; k < steps; ++k) {
    EnableGradGuard eg;
    const Vecs g =
        grad({scalar_loss(problem.inner_loss, theta, lam, "inner loss")}, theta, GradOptions().set_allow_unused(true));
    NoGradGuard ng;
    for (size_t j = 0; j < theta.size(); ++j) theta[j].add_(g[j], -static_cast<float>(lr));
  }
  return constants(theta);
}

}  // namespace bilevel
}  // namespace scalpel
