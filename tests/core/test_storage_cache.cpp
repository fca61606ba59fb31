// Storage's large-block cache (core/tensor.cpp): recycled blocks are never handed to two live
// tensors, fit the size asked for, and never leak their old contents into op results.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/ops.h"

using namespace scalpel;

// Churn through tensors of a few nearby sizes (all >= 64 KiB, the cache's threshold, some 64 bytes
// apart) while a window of them stays alive; each live tensor must keep the value written into it.
TEST(StorageCache, RecycledBlocksAreNeverSharedBetweenLiveTensors) {
  Generator gen(7);
  const std::vector<int64_t> sizes = {int64_t{1} << 14, (int64_t{1} << 14) + 16, int64_t{1} << 18,
                                      (int64_t{1} << 18) + 16, int64_t{1} << 19};
  std::vector<Tensor> live;
  std::vector<float> values;
  for (int step = 0; step < 60; ++step) {
    if (live.size() >= 5) {
      const auto victim = static_cast<size_t>(gen.randint(static_cast<int64_t>(live.size())));
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
      values.erase(values.begin() + static_cast<std::ptrdiff_t>(victim));
    }
    const int64_t n = sizes[static_cast<size_t>(gen.randint(static_cast<int64_t>(sizes.size())))];
    Tensor t = Tensor::full({n}, static_cast<float>(step));
    live.push_back(t);
    values.push_back(static_cast<float>(step));
    for (size_t i = 0; i < live.size(); ++i) {
      const Tensor& x = live[i];
      const int64_t last = x.numel() - 1;
      ASSERT_EQ(x.data()[0], values[i]) << "step " << step << ", tensor " << i;
      ASSERT_EQ(x.data()[last / 2], values[i]) << "step " << step << ", tensor " << i;
      ASSERT_EQ(x.data()[last], values[i]) << "step " << step << ", tensor " << i;
      for (size_t j = 0; j < i; ++j) ASSERT_NE(live[j].data(), x.data()) << "step " << step;
    }
  }
}

// Blocks freed full of NaN are recycled into new tensors: zeros(), matmul (beta = 0 into a
// recycled output) and a backward that accumulates into a fresh buffer must not see the NaNs.
TEST(StorageCache, RecycledBlocksDoNotLeakOldValuesIntoResults) {
  Generator gen(11);
  const Tensor a = Tensor::uniform({512, 512}, gen, -1.0f, 1.0f);
  const Tensor b = Tensor::uniform({512, 512}, gen, -1.0f, 1.0f);
  const std::vector<float> expected = matmul(a, b).to_vector();
  for (int round = 0; round < 3; ++round) {
    { Tensor poison = Tensor::full({512, 512}, std::numeric_limits<float>::quiet_NaN()); }
    const Tensor z = Tensor::zeros({512, 512});
    for (float v : z.to_vector()) ASSERT_EQ(v, 0.0f) << "round " << round;
    { Tensor poison = Tensor::full({512, 512}, std::numeric_limits<float>::quiet_NaN()); }
    EXPECT_EQ(matmul(a, b).to_vector(), expected) << "round " << round;
    { Tensor poison = Tensor::full({512, 512}, std::numeric_limits<float>::quiet_NaN()); }
    Tensor x = a.detach();
    x.set_requires_grad(true);
    const std::vector<Tensor> g = grad({sum(matmul(x, b))}, {x});
    for (float v : g[0].to_vector()) ASSERT_TRUE(std::isfinite(v)) << "round " << round;
  }
}
