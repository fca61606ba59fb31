// Storage's large-block cache (core/tensor.cpp): recycled blocks are never handed to two live
// tensors, fit the size asked for, and never leak their old contents into op results; the fit
// policy itself (core/block_cache.h) on a private cache.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

#include "core/block_cache.h"
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

// The fit policy on a private cache (the process-wide one is off under AddressSanitizer): the exact
// size first, else the smallest held block of at most 1.5x the request; never a smaller block,
// never a looser fit, nothing below 64 KiB; the real size comes back, capacity evicts the oldest.
TEST(StorageCache, TakeReturnsTheExactSizeElseTheSmallestBlockWithinOneAndAHalfTimes) {
  constexpr size_t kKiB = 1024;
  BlockCache cache(size_t{64} << 20);
  auto block = [](size_t bytes) { return std::aligned_alloc(64, bytes); };
  void* b100 = block(100 * kKiB);
  void* b140 = block(140 * kKiB);
  void* b160 = block(160 * kKiB);
  cache.give(b140, 140 * kKiB);
  cache.give(b160, 160 * kKiB);  // freed after b140, so a first fit from the newest would pick it
  cache.give(b100, 100 * kKiB);
  EXPECT_EQ(cache.held_bytes(), 400 * kKiB);
  size_t got = 0;
  EXPECT_EQ(cache.take(108 * kKiB, &got), b140) << "the smallest block within 1.5x";  // 160 fits too
  EXPECT_EQ(got, 140 * kKiB);
  got = 0;
  EXPECT_EQ(cache.take(106 * kKiB, &got), nullptr) << "160 KiB is more than 1.5x of 106 KiB";
  EXPECT_EQ(got, 0u);
  EXPECT_EQ(cache.take(107 * kKiB, &got), b160);  // 160 <= 1.5 x 107
  EXPECT_EQ(got, 160 * kKiB);
  EXPECT_EQ(cache.take(120 * kKiB, &got), nullptr) << "never a smaller block";
  EXPECT_EQ(cache.take(100 * kKiB, &got), b100);
  EXPECT_EQ(got, 100 * kKiB);
  EXPECT_EQ(cache.held_bytes(), 0u);
  // The exact size wins over a larger block that fits, the most recently freed first.
  void* e1 = block(96 * kKiB);
  void* e2 = block(96 * kKiB);
  void* l = block(97 * kKiB);
  cache.give(e1, 96 * kKiB);
  cache.give(l, 97 * kKiB);
  cache.give(e2, 96 * kKiB);
  EXPECT_EQ(cache.take(96 * kKiB, &got), e2);
  EXPECT_EQ(cache.take(96 * kKiB, &got), e1);
  EXPECT_EQ(cache.take(96 * kKiB, &got), l);
  EXPECT_EQ(got, 97 * kKiB);
  std::free(e1), std::free(e2), std::free(l), std::free(b100), std::free(b140), std::free(b160);
  // Below the floor nothing is held; over capacity the oldest goes.
  EXPECT_EQ(cache.take(BlockCache::kMinBytes / 2, &got), nullptr);
  cache.give(block(BlockCache::kMinBytes / 2), BlockCache::kMinBytes / 2);
  EXPECT_EQ(cache.held_bytes(), 0u);
  BlockCache small(200 * kKiB);
  void* o1 = block(100 * kKiB);
  void* o2 = block(100 * kKiB);
  small.give(o1, 100 * kKiB);
  small.give(o2, 100 * kKiB);
  small.give(block(100 * kKiB), 100 * kKiB);  // evicts o1
  EXPECT_EQ(small.held_bytes(), 200 * kKiB);
  void* t1 = small.take(100 * kKiB, &got);
  void* t2 = small.take(100 * kKiB, &got);
  EXPECT_EQ(t1 == o2 || t2 == o2, true) << "the second block must still be held";
  EXPECT_EQ(small.take(100 * kKiB, &got), nullptr) << "two blocks fit in 200 KiB, not three";
  std::free(t1), std::free(t2);
}
