// Head policy (optim/head_policy.h, issue 12 item 3): what the task-specific parameters get under
// joint / own / weighted, checked against the surgeon run by hand on the shared and whole-model
// gradients; mixed is linear, so weighted equals joint for it; and the option errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/grad_vector.h"
#include "core/ops.h"
#include "optim/gradients.h"
#include "optim/train_step.h"
#include "surgery_test_util.h"

using namespace scalpel;
using optim::HeadPolicy;

namespace {

// A shared trunk w (3 values) and two heads (2 values each); the parameter order interleaves a
// head between trunk parts, so the split is not a prefix.
struct Net {
  Tensor w1 = Tensor::from_vector({0.5f, -0.3f}).set_requires_grad();
  Tensor h1 = Tensor::from_vector({1.0f, 0.2f}).set_requires_grad();
  Tensor w2 = Tensor::from_vector({0.7f}).set_requires_grad();
  Tensor h2 = Tensor::from_vector({-0.4f, 0.8f}).set_requires_grad();
  std::vector<Tensor> losses() const {
    const Tensor z = add(w1, mul(w2, w2));  // shared representation (2 values)
    return {square(dot(h1, z) - 1.0f) + 0.1f, square(dot(h2, z) + 2.0f) * 3.0f};
  }
  std::vector<Tensor> params() const { return {w1, h1, w2, h2}; }
  std::vector<Tensor> heads() const { return {h1, h2}; }
};

// Flat layout [w1(2) h1(2) w2(1) h2(2)]: shared entries 0, 1, 4; head 1: 2, 3; head 2: 5, 6.
const std::vector<int> kShared{0, 1, 4};
const std::vector<int> kHead1{2, 3}, kHead2{5, 6};

std::unique_ptr<optim::TrainStep> make_step(const Net& n, const std::string& method, HeadPolicy policy,
                                            double lambda = 1.0) {
  return std::make_unique<optim::TrainStep>(std::make_unique<optim::SGD>(n.params(), optim::SGDOptions(0.1)),
                                            surgery::make_surgeon(method, surgery::SurgeonOptions().lambda(lambda)),
                                            optim::TrainStepOptions().head_policy(policy).head_params(n.heads()));
}

std::vector<float> pick(const GradVector& g, const std::vector<int>& idx) {
  std::vector<float> out;
  for (int i : idx) out.push_back(g[i]);
  return out;
}

// The surgeon by hand on the given gradient rows; returns d and the weights it reported.
std::vector<float> combine(const std::string& method, const std::vector<std::vector<float>>& rows,
                           std::vector<double>* weights = nullptr, double lambda = 1.0) {
  surgery::SurgeryDiagnostics diag;
  const std::vector<float> d =
      scalpel::testing::combine_rows(method, rows, surgery::SurgeonOptions().lambda(lambda), &diag);
  if (weights) *weights = diag.weights;
  return d;
}

void expect_near(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6 * (1 + std::fabs(b[i]))) << what << " " << i;
}

}  // namespace

TEST(HeadPolicy, JointOwnAndWeightedGiveTheHeadsWhatTheySay) {
  Net ref;
  const std::vector<GradVector> g = optim::per_loss_gradients(ref.losses(), ref.params());
  const std::vector<std::vector<float>> full{g[0].to_vector(), g[1].to_vector()};
  const std::vector<std::vector<float>> shared{pick(g[0], kShared), pick(g[1], kShared)};
  // joint: MGDA over the whole-model gradients.
  {
    Net n;
    auto s = make_step(n, "mgda", HeadPolicy::Joint);
    s->step(n.losses());
    expect_near(s->direction().to_vector(), combine("mgda", full), "joint");
  }
  std::vector<double> w;
  const std::vector<float> d_shared = combine("mgda", shared, &w);
  ASSERT_EQ(w.size(), 2u);
  ASSERT_GT(std::fabs(w[0] - w[1]), 1e-3) << "the test needs unequal MGDA weights";
  // own: MGDA over the shared part; each head its own gradient.
  {
    Net n;
    auto s = make_step(n, "mgda", HeadPolicy::Own);
    s->step(n.losses());
    expect_near(pick(s->direction(), kShared), d_shared, "own shared");
    expect_near(pick(s->direction(), kHead1), pick(g[0], kHead1), "own head 1");
    expect_near(pick(s->direction(), kHead2), pick(g[1], kHead2), "own head 2");
  }
  // weighted: the heads scaled by MGDA's weights (computed on the shared part).
  {
    Net n;
    auto s = make_step(n, "mgda", HeadPolicy::Weighted);
    const optim::StepResult r = s->step(n.losses());
    expect_near(pick(s->direction(), kShared), d_shared, "weighted shared");
    std::vector<float> h1 = pick(g[0], kHead1), h2 = pick(g[1], kHead2);
    for (float& x : h1) x *= static_cast<float>(w[0]);
    for (float& x : h2) x *= static_cast<float>(w[1]);
    expect_near(pick(s->direction(), kHead1), h1, "weighted head 1");
    expect_near(pick(s->direction(), kHead2), h2, "weighted head 2");
    EXPECT_EQ(r.diagnostics.weights, w);
  }
}

// Under own, the logged norms and cosines are those of the shared part of the gradients.
TEST(HeadPolicy, OwnDiagnosticsDescribeTheSharedGradients) {
  Net ref;
  const std::vector<GradVector> g = optim::per_loss_gradients(ref.losses(), ref.params());
  double sq = 0;
  for (int i : kShared) sq += double(g[0][i]) * g[0][i];
  Net n;
  auto s = make_step(n, "pcgrad", HeadPolicy::Own);
  const optim::StepResult r = s->step(n.losses());
  EXPECT_NEAR(r.diagnostics.g0_norm, std::sqrt(sq), 1e-6 * std::sqrt(sq));
  EXPECT_LT(r.diagnostics.g0_norm, g[0].norm() * (1 - 1e-3)) << "the heads must not be in the norm";
}

// Mixed is linear: the weighted policy gives every head λ_k ∇L_k, the same d as joint; own
// gives the auxiliary head ∇L_1 instead of λ ∇L_1.
TEST(HeadPolicy, WeightedEqualsJointForMixedAndOwnDropsLambdaOnTheHeads) {
  Net a, b, c;
  auto joint = make_step(a, "mixed", HeadPolicy::Joint, 0.25);
  auto weighted = make_step(b, "mixed", HeadPolicy::Weighted, 0.25);
  auto own = make_step(c, "mixed", HeadPolicy::Own, 0.25);
  joint->step(a.losses());
  weighted->step(b.losses());
  own->step(c.losses());
  expect_near(weighted->direction().to_vector(), joint->direction().to_vector(), "weighted vs joint");
  expect_near(pick(own->direction(), kShared), pick(joint->direction(), kShared), "own shared");
  std::vector<float> h2 = pick(joint->direction(), kHead2);
  for (float& x : h2) x /= 0.25f;
  expect_near(pick(own->direction(), kHead2), h2, "own aux head");
}

TEST(HeadPolicy, BadOptionsNameWhatIsWrong) {
  auto error_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "<no error>";
  };
  Net n;
  auto sgd = [&] { return std::make_unique<optim::SGD>(n.params(), optim::SGDOptions(0.1)); };
  std::string e = error_of([&] {
    optim::TrainStep s(sgd(), surgery::make_surgeon("mgda"), optim::TrainStepOptions().head_policy(HeadPolicy::Own));
  });
  EXPECT_NE(e.find("head policy 'own' needs the task-specific parameters"), std::string::npos) << e;
  e = error_of([&] {
    optim::TrainStep s(
        sgd(), surgery::make_surgeon("mixed"),
        optim::TrainStepOptions().head_policy(HeadPolicy::Weighted).head_params(n.heads()).fused_mixed(true));
  });
  EXPECT_NE(e.find("cannot run with fused_mixed"), std::string::npos) << e;
  const Tensor stranger = Tensor::from_vector({1.0f, 2.0f, 3.0f}).set_requires_grad();
  e = error_of([&] {
    optim::TrainStep s(sgd(), surgery::make_surgeon("mgda"),
                       optim::TrainStepOptions().head_policy(HeadPolicy::Own).head_params({n.h1, stranger}));
  });
  EXPECT_NE(e.find("head_params: tensor 1 (shape [3]) is not a model parameter"), std::string::npos) << e;
  e = error_of([&] {
    optim::TrainStep s(sgd(), surgery::make_surgeon("mgda"),
                       optim::TrainStepOptions().head_policy(HeadPolicy::Own).head_params(n.params()));
  });
  EXPECT_NE(e.find("nothing is shared"), std::string::npos) << e;
  e = error_of([] { optim::head_policy_from_string("shared"); });
  EXPECT_NE(e.find("unknown policy 'shared' (expected joint, own or weighted)"), std::string::npos) << e;
  EXPECT_EQ(optim::head_policy_from_string("weighted"), HeadPolicy::Weighted);
}
