// RotoGrad (nn/rotograd.h): the rotated forward (gradcheck), rotations that stay orthogonal and
// learn to align the task gradients, the magnitude scales against hand-computed values, the state
// round trip and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "core/autograd.h"
#include "core/ops.h"
#include "gradcheck.h"
#include "nn/rotograd.h"
#include "test_util.h"

using namespace scalpel;
using scalpel::testing::gradcheck;
using scalpel::testing::randn;

namespace {

constexpr int64_t kN = 16, kD = 6;

double dotd(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += double(x[i]) * y[i];
  return s;
}
double normd(const Tensor& a) { return std::sqrt(dotd(a, a)); }

// L_k = Σ z_k ⊙ C_k: ∂L_k/∂z_k = C_k, whatever z is.
std::vector<Tensor> linear_losses(const std::vector<Tensor>& zk, const std::vector<Tensor>& C) {
  std::vector<Tensor> losses;
  for (size_t k = 0; k < zk.size(); ++k) losses.push_back(sum(mul(zk[k], C[k])));
  return losses;
}

// The columns shifted by two (two 3-cycles: an even permutation) with two of them negated: a
// rotation (det +1) far from the identity. RotoGrad's rotations start at I and stay in SO(d), so
// only such a relative rotation between the tasks can be undone exactly.
Tensor permuted(const Tensor& a) {
  Tensor out = Tensor::zeros(a.shape());
  for (int64_t n = 0; n < a.size(0); ++n)
    for (int64_t j = 0; j < a.size(1); ++j)
      out.set({n, (j + 2) % a.size(1)}, (j % 3 == 0 ? -1.0f : 1.0f) * a.at({n, j}));
  return out;
}

double max_orthogonality_error(const Tensor& R) {
  const Tensor rtr = matmul(R.t(), R);
  double err = 0;
  for (int64_t i = 0; i < R.size(0); ++i)
    for (int64_t j = 0; j < R.size(0); ++j) err = std::max(err, std::abs(rtr.at({i, j}) - (i == j ? 1.0 : 0.0)));
  return err;
}

}  // namespace

TEST(RotoGrad, RotationsLearnToAlignTheTaskGradientsAndStayOrthogonal) {
  nn::RotoGrad roto(nn::RotoGradOptions(kD, 2).lr(0.1));
  Tensor z = randn({kN, kD}, 1);
  z.set_requires_grad(true);
  const Tensor A = randn({kN, kD}, 2);
  const std::vector<Tensor> C{A, permuted(A)};
  // o_k = ∂L_k/∂z: the gradients each task sends into the shared representation.
  auto cosine = [&]() {
    const auto zk = roto.forward(z);
    const auto losses = linear_losses(zk, C);
    const Tensor o0 = grad({losses[0]}, {z})[0], o1 = grad({losses[1]}, {z})[0];
    return dotd(o0, o1) / (normd(o0) * normd(o1));
  };
  const double before = cosine();
  EXPECT_LT(std::abs(before), 0.5);
  double first_loss = 0;
  for (int t = 0; t < 400; ++t) {
    const auto zk = roto.forward(z);
    roto.update(linear_losses(zk, C));
    if (t == 0) first_loss = roto.alignment_loss()[0] + roto.alignment_loss()[1];
  }
  const double after = cosine();
  EXPECT_GT(after, 0.99) << "cosine " << before << " -> " << after;
  EXPECT_LT(roto.alignment_loss()[0] + roto.alignment_loss()[1], 1e-4 * first_loss);
  for (int k = 0; k < 2; ++k) EXPECT_LT(max_orthogonality_error(roto.rotation(k)), 1e-5) << "task " << k;
  EXPECT_EQ(roto.steps(), 400);
}

TEST(RotoGrad, ForwardGradcheckWithLearnedRotations) {
  nn::RotoGrad roto(nn::RotoGradOptions(kD, 2).lr(0.2));
  Tensor z0 = randn({kN, kD}, 3);
  z0.set_requires_grad(true);
  const Tensor A = randn({kN, kD}, 4);
  for (int t = 0; t < 5; ++t) roto.update(linear_losses(roto.forward(z0), {A, permuted(A)}));
  ASSERT_GT(std::abs(roto.rotation(1).at({0, 0}) - 1.0f), 1e-3) << "the rotation should have moved";
  for (int k = 0; k < 2; ++k) {
    EXPECT_TRUE(gradcheck("RotoGrad forward, task " + std::to_string(k),
                          [&](const auto& x) { return roto.forward(x[0])[static_cast<size_t>(k)]; },
                          {randn({5, kD}, 5)}));
  }
  // Evaluation mode: the same rotation, no graph for the scales.
  roto.eval();
  const Tensor x = randn({3, kD}, 6);
  const Tensor y = roto.forward(x)[1];
  const Tensor ref = matmul(x, roto.rotation(1).t());
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < kD; ++j) EXPECT_NEAR(y.at({i, j}), ref.at({i, j}), 1e-6);
}

TEST(RotoGrad, MagnitudeScalesEqualiseTheTaskGradientsByTheirConvergence) {
  nn::RotoGrad roto(nn::RotoGradOptions(kD, 3));
  Tensor z = randn({kN, kD}, 7);
  z.set_requires_grad(true);
  std::vector<Tensor> C{mul(randn({kN, kD}, 8), 3.0f), mul(randn({kN, kD}, 9), 0.5f), randn({kN, kD}, 10)};
  auto step = [&](const std::vector<Tensor>& c) {
    const auto losses = linear_losses(roto.forward(z), c);
    std::vector<double> n;
    for (const Tensor& ck : c) n.push_back(normd(ck));  // ‖∂L_k/∂z‖ = ‖C_k R_k‖ = ‖C_k‖
    roto.update(losses);
    std::vector<double> sent;  // ‖what L_k's backward now sends into z‖ = s_k n_k
    for (size_t k = 0; k < 3; ++k) sent.push_back(normd(grad({losses[k]}, {z})[0]));
    return std::make_pair(n, sent);
  };
  // Step 0 sets the reference norms: every c_k = 1, α_k = 1/3, each task sends the mean norm.
  auto [n0, sent0] = step(C);
  const double mean0 = (n0[0] + n0[1] + n0[2]) / 3;
  for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(sent0[k], mean0, 1e-4 * mean0) << "task " << k;
  // Step 1: task 0's gradient halves (it converged faster): c = (1/2, 1, 1), α = (0.2, 0.4, 0.4),
  // W = 0.2 n0 + 0.4 n1 + 0.4 n2.
  C[0] = mul(C[0], 0.5f);
  auto [n1, sent1] = step(C);
  const double w = 0.2 * n1[0] + 0.4 * n1[1] + 0.4 * n1[2];
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_NEAR(sent1[k], w, 1e-4 * w) << "task " << k;
    EXPECT_NEAR(roto.scales()[k], w / n1[k], 1e-4 * w / n1[k]) << "task " << k;
  }
  // scale_magnitudes(false): each task sends its own norm.
  nn::RotoGrad plain(nn::RotoGradOptions(kD, 3).scale_magnitudes(false));
  const auto losses = linear_losses(plain.forward(z), C);
  plain.update(losses);
  for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(normd(grad({losses[k]}, {z})[0]), normd(C[k]), 1e-4 * normd(C[k]));
}

TEST(RotoGrad, StateDictRoundTripContinuesBitExactly) {
  Tensor z = randn({kN, kD}, 11);
  z.set_requires_grad(true);
  const Tensor A = randn({kN, kD}, 12);
  const std::vector<Tensor> C{A, permuted(A)};
  nn::RotoGrad a(nn::RotoGradOptions(kD, 2).burn_in(3));
  for (int t = 0; t < 5; ++t) a.update(linear_losses(a.forward(z), C));
  nn::RotoGrad b(nn::RotoGradOptions(kD, 2).burn_in(3));
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(b.steps(), 5);
  for (int t = 0; t < 3; ++t) {
    a.update(linear_losses(a.forward(z), C));
    b.update(linear_losses(b.forward(z), C));
  }
  for (int k = 0; k < 2; ++k) EXPECT_EQ(a.rotation(k).to_vector(), b.rotation(k).to_vector()) << "task " << k;
  EXPECT_EQ(a.scales(), b.scales());
  // A checkpoint without RotoGrad's own state is refused by name.
  StateDict partial;
  for (const auto& [name, t] : a.named_buffers()) partial.set_tensor(name, t);
  try {
    b.load_state_dict(partial);
    FAIL() << "expected a throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("RotoGrad"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("step"), std::string::npos) << e.what();
  }
}

TEST(RotoGrad, BadShapesAndCallsNameTheModule) {
  nn::RotoGrad roto(nn::RotoGradOptions(kD, 2));
  auto expect_throw = [](const std::function<void()>& f, const std::string& text) {
    try {
      f();
      ADD_FAILURE() << "expected a throw mentioning " << text;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  expect_throw([&] { roto.forward(randn({4, kD + 1}, 1)); }, "expected [N, 6]");
  expect_throw([&] { roto.update({Tensor::scalar(1), Tensor::scalar(2)}); }, "needs a forward() in training mode");
  Tensor z = randn({4, kD}, 2);
  z.set_requires_grad(true);
  const auto zk = roto.forward(z);
  expect_throw([&] { roto.update({sum(zk[0])}); }, "got 1 losses, expected 2");
  expect_throw([] { nn::RotoGrad(nn::RotoGradOptions(kD, 1)); }, "at least 2 tasks");
  expect_throw([] { nn::RotoGrad(nn::RotoGradOptions(kD, 2).lr(-1)); }, "lr must be finite and > 0");
}
