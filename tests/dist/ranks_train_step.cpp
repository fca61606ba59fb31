// TrainStep across real ranks (under mpirun): each rank computes the losses on its shard of a
// global batch (shards of unequal size at N = 3, rescaled as experiments::global_batch_mean does),
// and the step must equal a one-process step on the whole batch: same losses, same direction d,
// same parameters after several steps, for mixed (per-loss and fused) and for bloop (whose EMA
// must follow the global gradient), identical on every rank.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/dist.h"
#include "core/ops.h"
#include "core/random.h"
#include "optim/gradients.h"
#include "optim/optimizer.h"
#include "optim/surgery/surgeon.h"
#include "optim/train_step.h"

using namespace scalpel;
using namespace scalpel::optim;
using namespace scalpel::surgery;

namespace {

constexpr int64_t kRows = 8;

// ½·mean of squared residuals over rows [lo, hi) of (X, y), times `scale`; and ½‖θ‖².
std::vector<Tensor> losses(const Tensor& theta, const Tensor& X, const Tensor& y, int64_t lo, int64_t hi, float scale) {
  const Tensor resid =
      sub(linear(narrow(X, 0, lo, hi - lo), theta.reshape({1, 4})).reshape({hi - lo}), narrow(y, 0, lo, hi - lo));
  return {mul(mean(square(resid)), 0.5f * scale), mul(sum(square(theta)), 0.5f)};
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], b[i], 1e-6 * (1.0 + std::abs(b[i]))) << what << " [" << i << "]";
}

void run_against_one_process(const std::string& method, bool fused) {
  const int n = dist::world_size(), r = dist::rank();
  Generator gen(7);
  const Tensor X = Tensor::normal({kRows, 4}, gen);
  const Tensor y = Tensor::normal({kRows}, gen);
  const Tensor init = Tensor::normal({4}, gen);
  const int64_t lo = kRows * r / n, hi = kRows * (r + 1) / n;
  const float scale = static_cast<float>(static_cast<double>((hi - lo) * n) / kRows);

  Tensor theta = init.clone().set_requires_grad();
  const SurgeonOptions opts = SurgeonOptions().lambda(0.5);
  TrainStep step(std::make_unique<SGD>(std::vector<Tensor>{theta}, SGDOptions(0.1)), make_surgeon(method, opts),
                 TrainStepOptions().fused_mixed(fused).check_replicas_every(1));
  // The reference: the same recipe in this process alone, on the whole batch, no communication.
  Tensor ref = init.clone().set_requires_grad();
  std::unique_ptr<Surgeon> ref_surgeon = make_surgeon(method, opts);
  GradVector d_ref;
  for (int s = 0; s < 4; ++s) {
    const StepResult got = step.step(losses(theta, X, y, lo, hi, scale));
    const std::vector<Tensor> whole = losses(ref, X, y, 0, kRows, 1.0f);
    std::vector<GradVector> g = per_loss_gradients(whole, {ref});
    ref_surgeon->set_step(s);
    SurgeryDiagnostics diag;
    ref_surgeon->combine({&g[0], &g[1]}, {whole[0].item(), whole[1].item()}, d_ref, &diag);
    {
      NoGradGuard ng;
      ref.add_(Tensor::from_vector(std::vector<float>(d_ref.data(), d_ref.data() + d_ref.size())), -0.1f);
    }
    const std::string what = method + (fused ? " (fused)" : "") + " step " + std::to_string(s);
    EXPECT_NEAR(got.losses[0], whole[0].item(), 1e-6) << what;
    EXPECT_NEAR(got.losses[1], whole[1].item(), 1e-6) << what;
    // Identical parameters on every rank: check_replicas_every(1) would have thrown DistError.
    expect_close(std::vector<float>(step.direction().data(), step.direction().data() + step.direction().size()),
                 std::vector<float>(d_ref.data(), d_ref.data() + d_ref.size()), what + " d");
    expect_close(theta.to_vector(), ref.to_vector(), what + " parameters");
    if (!fused) {
      ASSERT_EQ(got.diagnostics.cos_g0_gk.size(), 1u) << what;
      EXPECT_NEAR(got.diagnostics.cos_g0_gk[0], diag.cos_g0_gk[0], 1e-5) << what;
      if (method == "bloop") {
        EXPECT_NEAR(got.diagnostics.ratio, diag.ratio, 1e-5 * (1 + std::abs(diag.ratio))) << what;
      }
    }
  }
}

}  // namespace

TEST(DistTrainStep, MixedEqualsOneProcessOnTheWholeBatch) { run_against_one_process("mixed", false); }
TEST(DistTrainStep, FusedMixedEqualsOneProcessOnTheWholeBatch) { run_against_one_process("mixed", true); }
TEST(DistTrainStep, BloopEqualsOneProcessOnTheWholeBatch) { run_against_one_process("bloop", false); }

TEST(DistTrainStep, ANonFiniteLossOnOneRankStopsEveryRank) {
  Tensor w = Tensor::ones({3}).set_requires_grad();
  TrainStep step(std::make_unique<SGD>(std::vector<Tensor>{w}, SGDOptions(0.1)), make_surgeon("mixed"));
  const float bad = dist::rank() == 1 ? -1.0f : 1.0f;  // log of a negative number on rank 1 only
  try {
    step.step({sum(square(w)), sum(log(mul(w, bad)))});
    FAIL() << "expected NonFiniteError on rank " << dist::rank();
  } catch (const NonFiniteError& e) {
    EXPECT_EQ(e.loss(), 1);
  }
  EXPECT_EQ(w.to_vector(), (std::vector<float>{1.0f, 1.0f, 1.0f}));  // nothing was updated
}
