// Hypergradients (optim/bilevel/): every method against the ridge toy's exact hypergradient (a
// closed form in double, checked itself against finite differences of the outer loss), as its
// budget grows; the unrolled method against the forward-mode recursion of the same K steps.
#include <gtest/gtest.h>

#include <cmath>

#include "core/ops.h"
#include "optim/bilevel/hypergradient.h"
#include "optim/bilevel/ridge.h"

using namespace scalpel;
using namespace scalpel::bilevel;

namespace {

Tensor tensor_of(const std::vector<double>& v) {
  std::vector<float> f(v.begin(), v.end());
  const int64_t n = static_cast<int64_t>(f.size());
  return Tensor::from_vector(f, {n});
}

double rel_error(const std::vector<Tensor>& got, const std::vector<double>& want) {
  const std::vector<float> g = got[0].to_vector();
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (g[i] - want[i]) * (g[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

struct Fixture {
  RidgeToy toy{40, 30, 8, 3.0, 0.5, 11};
  std::vector<double> lambda{-1.0, -0.5, 0.0, 0.5, -2.0, -1.5, 0.2, -0.3};
  std::vector<double> exact = toy.exact_hypergradient(lambda);
  Tensor theta_star = tensor_of(toy.solution(lambda));
  Tensor lam = tensor_of(lambda);
  double lmax = toy.hessian_eigenvalues(lambda).back();
  Hypergradient run(const HypergradOptions& o) const { return hypergradient(toy.problem(), {theta_star}, {lam}, o); }
};

}  // namespace

TEST(Bilevel, RidgeClosedFormMatchesFiniteDifferencesOfTheOuterLoss) {
  Fixture f;
  for (size_t j = 0; j < f.lambda.size(); ++j) {
    const double h = 1e-4;
    std::vector<double> lp = f.lambda, lm = f.lambda;
    lp[j] += h;
    lm[j] -= h;
    const double numeric = (f.toy.outer_loss(f.toy.solution(lp)) - f.toy.outer_loss(f.toy.solution(lm))) / (2 * h);
    EXPECT_NEAR(f.exact[j], numeric, 1e-6 + 1e-5 * std::fabs(numeric)) << j;
  }
}

TEST(Bilevel, ExactMethodMatchesTheClosedForm) {
  Fixture f;
  const Hypergradient h = f.run(HypergradOptions().method(Method::kExact));
  EXPECT_LT(rel_error(h.grad, f.exact), 1e-4);
  EXPECT_EQ(h.hvps, 8);  // one per inner coordinate
  EXPECT_LT(h.residual, 1e-4);
}

TEST(Bilevel, ConjugateGradientConvergesWithinTheDimension) {
  Fixture f;
  double prev = 1e30;
  for (int64_t k : {1, 2, 4, 8}) {
    const Hypergradient h = f.run(HypergradOptions().method(Method::kConjugateGradient).iterations(k));
    const double e = rel_error(h.grad, f.exact);
    EXPECT_LT(e, prev) << "cg, " << k << " iterations";
    prev = e;
  }
  EXPECT_LT(prev, 1e-3);  // 8 iterations on an 8-dimensional system (float rounding aside)
}

TEST(Bilevel, NeumannErrorShrinksWithTheNumberOfTerms) {
  Fixture f;
  const double alpha = 1.0 / f.lmax;
  double prev = 1e30;
  for (int64_t k : {0, 4, 16, 64, 256}) {
    const Hypergradient h = f.run(HypergradOptions().method(Method::kNeumann).iterations(k).alpha(alpha));
    const double e = rel_error(h.grad, f.exact);
    EXPECT_LT(e, prev) << "neumann, " << k << " terms";
    EXPECT_EQ(h.hvps, k);
    prev = e;
  }
  EXPECT_LT(prev, 2e-3);
}

TEST(Bilevel, T1T2IsNeumannWithNoTerms) {
  Fixture f;
  const Hypergradient t = f.run(HypergradOptions().method(Method::kT1T2).alpha(0.05));
  const Hypergradient n = f.run(HypergradOptions().method(Method::kNeumann).iterations(0).alpha(0.05));
  EXPECT_EQ(t.grad[0].to_vector(), n.grad[0].to_vector());
  EXPECT_EQ(t.hvps, 0);
}

TEST(Bilevel, UnrolledMatchesItsForwardModeRecursionAndApproachesTheExactAnswer) {
  Fixture f;
  const double lr = 1.0 / f.lmax;
  // A start away from 0 (at θ = 0 one step's hypergradient is exactly zero).
  const std::vector<double> start(8, 0.3);
  const Tensor theta0 = tensor_of(start);
  for (int64_t K : {1, 10, 50}) {
    for (int64_t T : {int64_t{0}, std::min<int64_t>(K, 5)}) {
      const Hypergradient h =
          hypergradient(f.toy.problem(), {theta0}, {f.lam},
                        HypergradOptions().method(Method::kUnrolled).iterations(K).alpha(lr).truncate(T));
      const std::vector<double> want = f.toy.unrolled_reference(f.lambda, start, K, lr, T);
      EXPECT_LT(rel_error(h.grad, want), 1e-3) << "K " << K << ", T " << T;
      EXPECT_EQ(h.hvps, T > 0 ? T : K);
    }
  }
  double prev = 1e30;
  for (int64_t K : {10, 40, 160}) {
    const Hypergradient h = hypergradient(f.toy.problem(), {theta0}, {f.lam},
                                          HypergradOptions().method(Method::kUnrolled).iterations(K).alpha(lr));
    const double e = rel_error(h.grad, f.exact);
    EXPECT_LT(e, prev) << "unrolled, " << K << " steps";
    prev = e;
  }
  EXPECT_LT(prev, 1e-3);
}

TEST(Bilevel, UnrollingFromTheOptimumIsNeumannWithOneTermFewer) {
  // From θ*, K GD steps stay at θ*, and their response recursion is α Σ_{k<K} (I − αH)^k.
  Fixture f;
  const double alpha = 1.0 / f.lmax;
  for (int64_t K : {1, 5, 20}) {
    const Hypergradient u = f.run(HypergradOptions().method(Method::kUnrolled).iterations(K).alpha(alpha));
    const Hypergradient n = f.run(HypergradOptions().method(Method::kNeumann).iterations(K - 1).alpha(alpha));
    const std::vector<float> nv = n.grad[0].to_vector();
    EXPECT_LT(rel_error(u.grad, std::vector<double>(nv.begin(), nv.end())), 1e-4) << K;
  }
}

TEST(Bilevel, SharedLambdaSumsThePerFeatureHypergradient) {
  RidgeToy toy(40, 30, 6, 2.0, 0.3, 5);
  const std::vector<double> lam{-0.7};
  const Hypergradient h = hypergradient(toy.problem(), {tensor_of(toy.solution(lam))}, {tensor_of(lam)},
                                        HypergradOptions().method(Method::kExact));
  EXPECT_NEAR(h.grad[0].item(), toy.exact_hypergradient(lam)[0],
              1e-4 * (1 + std::fabs(toy.exact_hypergradient(lam)[0])));
}

TEST(Bilevel, MinimizeInnerReachesTheSolution) {
  Fixture f;
  const std::vector<Tensor> th = minimize_inner(f.toy.problem(), {Tensor::zeros({8})}, {f.lam}, 3000, 1.0 / f.lmax);
  const std::vector<double> star = f.toy.solution(f.lambda);
  const std::vector<float> got = th[0].to_vector();
  for (size_t i = 0; i < star.size(); ++i) EXPECT_NEAR(got[i], star[i], 1e-4) << i;
}

TEST(Bilevel, BadOptionsAndLossesAreNamed) {
  Fixture f;
  auto message = [&](const HypergradOptions& o, const Problem& p) {
    try {
      hypergradient(p, {f.theta_star}, {f.lam}, o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const Problem p = f.toy.problem();
  EXPECT_NE(message(HypergradOptions().iterations(-1), p).find("iterations"), std::string::npos);
  EXPECT_NE(message(HypergradOptions().method(Method::kUnrolled).iterations(3).truncate(4), p).find("truncate"),
            std::string::npos);
  EXPECT_NE(message(HypergradOptions().alpha(0.0), p).find("alpha"), std::string::npos);
  EXPECT_NE(message(HypergradOptions().damping(-1.0), p).find("damping"), std::string::npos);
  EXPECT_NE(message(HypergradOptions().method(Method::kExact).max_exact(4), p).find("max_exact"), std::string::npos);
  Problem vector_loss = p;
  vector_loss.outer_loss = [](const std::vector<Tensor>& th, const std::vector<Tensor>&) { return mul(th[0], 2.0f); };
  EXPECT_NE(message(HypergradOptions(), vector_loss).find("outer loss must return a scalar"), std::string::npos);
  EXPECT_THROW(parse_method("newton"), std::invalid_argument);
  EXPECT_EQ(parse_method(method_name(Method::kNeumann)), Method::kNeumann);
}
