// Synchronised batch norm across real ranks (under mpirun): each rank normalises its shard of a
// global batch (shards of unequal size at N = 3) with sync = true, and must get the rows, the
// running statistics and the input gradient of one process normalising the whole batch, with
// the weight and bias gradients summing over the ranks to the whole batch's; without sync each
// rank uses its own statistics (and differs).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/dist.h"
#include "core/ops.h"
#include "core/random.h"

using namespace scalpel;

namespace {

void expect_close(const std::vector<float>& a, const std::vector<float>& b, double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], b[i], tol * (1.0 + std::abs(b[i]))) << what << " [" << i << "]";
}

void check(bool relu) {
  const int n = dist::world_size(), r = dist::rank();
  const int64_t rows = 7, C = 3;
  Generator gen(11);
  const Tensor X = add(mul(Tensor::normal({rows, C, 2, 2}, gen), 2.0f), 0.5f);
  const Tensor R = Tensor::normal({rows, C, 2, 2}, gen);  // the upstream gradient
  const Tensor w0 = Tensor::normal({C}, gen), b0 = Tensor::normal({C}, gen);
  const int64_t lo = rows * r / n, hi = rows * (r + 1) / n;
  auto op = relu ? batch_norm_relu : batch_norm;
  const std::string what = relu ? "batch_norm_relu" : "batch_norm";

  // One process, whole batch.
  Tensor xw = X.clone().set_requires_grad(), ww = w0.clone().set_requires_grad(), bw = b0.clone().set_requires_grad();
  Tensor rmw = Tensor::zeros({C}), rvw = Tensor::ones({C});
  const Tensor yw = op(xw, ww, bw, rmw, rvw, true, 0.1f, 1e-5f, false);
  const std::vector<Tensor> gw = grad({sum(mul(yw, R))}, {xw, ww, bw});

  // This rank's shard, statistics over every rank.
  Tensor xs = narrow(X, 0, lo, hi - lo).clone().set_requires_grad();
  Tensor ws = w0.clone().set_requires_grad(), bs = b0.clone().set_requires_grad();
  Tensor rms = Tensor::zeros({C}), rvs = Tensor::ones({C});
  const Tensor ys = op(xs, ws, bs, rms, rvs, true, 0.1f, 1e-5f, true);
  const std::vector<Tensor> gs = grad({sum(mul(ys, narrow(R, 0, lo, hi - lo)))}, {xs, ws, bs});

  expect_close(ys.to_vector(), narrow(yw, 0, lo, hi - lo).contiguous().to_vector(), 1e-5, what + " rows");
  expect_close(rms.to_vector(), rmw.to_vector(), 1e-6, what + " running_mean");
  expect_close(rvs.to_vector(), rvw.to_vector(), 1e-6, what + " running_var");
  expect_close(gs[0].to_vector(), narrow(gw[0], 0, lo, hi - lo).contiguous().to_vector(), 1e-5, what + " dx");
  for (int k = 1; k <= 2; ++k) {
    std::vector<float> local = gs[static_cast<size_t>(k)].to_vector();
    std::vector<double> total(local.begin(), local.end());
    dist::allreduce_sum(total.data(), static_cast<int64_t>(total.size()));
    expect_close(std::vector<float>(total.begin(), total.end()), gw[static_cast<size_t>(k)].to_vector(), 1e-5,
                 what + (k == 1 ? " dweight" : " dbias"));
  }
  // Without sync, a rank's statistics are its own rows': the running mean differs from the whole's.
  Tensor rmo = Tensor::zeros({C}), rvo = Tensor::ones({C});
  op(narrow(X, 0, lo, hi - lo).contiguous(), w0, b0, rmo, rvo, true, 0.1f, 1e-5f, false);
  double diff = 0.0;
  for (int64_t c = 0; c < C; ++c) diff += std::abs(rmo.to_vector()[c] - rmw.to_vector()[c]);
  EXPECT_GT(diff, 1e-3) << what << ": per-rank statistics should differ from the global ones";
}

}  // namespace

TEST(DistBatchNorm, SyncEqualsOneProcessOnTheWholeBatch) { check(false); }
TEST(DistBatchNorm, SyncWithReluEqualsOneProcessOnTheWholeBatch) { check(true); }
