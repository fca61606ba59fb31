// Collectives of core/dist.h across real ranks (run by CTest under mpirun -np 2 and -np 3):
// packed means over spans of any sizes and in buckets, identical bits on every rank, the double
// reductions, broadcast and allgather, and the replica check naming the rank that differs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/dist.h"

using namespace scalpel;

namespace {

// The same checksum on every rank.
void expect_identical_on_every_rank(const std::vector<float>& v, const std::string& what) {
  const uint64_t h = dist::checksum({{const_cast<float*>(v.data()), static_cast<int64_t>(v.size())}});
  const std::vector<uint64_t> all = dist::allgather(h);
  for (size_t r = 1; r < all.size(); ++r) EXPECT_EQ(all[r], all[0]) << what << ": rank " << r << " differs";
}

}  // namespace

TEST(DistRanks, TheTestRunsOnSeveralRanks) {
  EXPECT_GE(dist::world_size(), 2);
  EXPECT_TRUE(dist::active());
  EXPECT_EQ(dist::rank_label(), "rank " + std::to_string(dist::rank()) + " of " + std::to_string(dist::world_size()));
}

TEST(DistRanks, MeanOverSpansOfAnySizeInAnyBucket) {
  const int n = dist::world_size(), r = dist::rank();
  // Sizes not divisible by N, an empty span, one longer than a bucket.
  const std::vector<int64_t> sizes = {5, 0, 1, 37, 2};
  for (int64_t bucket : {int64_t{4} << 20, int64_t{7}, int64_t{1}}) {
    dist::set_bucket_floats(bucket);
    std::vector<std::vector<float>> bufs;
    std::vector<dist::FloatSpan> spans;
    for (size_t s = 0; s < sizes.size(); ++s) {
      bufs.emplace_back(static_cast<size_t>(sizes[s]));
      for (int64_t i = 0; i < sizes[s]; ++i)
        bufs[s][static_cast<size_t>(i)] = static_cast<float>((r + 1) * (i + 10 * s));
    }
    for (auto& b : bufs) spans.push_back({b.data(), static_cast<int64_t>(b.size())});
    dist::allreduce_mean(spans);
    // mean over r of (r+1)·x = x·(N+1)/2, exact in float for these small integers and N = 2, 3.
    for (size_t s = 0; s < sizes.size(); ++s) {
      for (int64_t i = 0; i < sizes[s]; ++i) {
        ASSERT_EQ(bufs[s][static_cast<size_t>(i)], static_cast<float>((i + 10 * s) * (n + 1)) / 2.0f)
            << "bucket " << bucket << " span " << s << " element " << i;
      }
      expect_identical_on_every_rank(bufs[s], "span " + std::to_string(s));
    }
  }
  dist::set_bucket_floats(0);  // back to the default
  EXPECT_EQ(dist::bucket_floats(), int64_t{4} << 20);
}

TEST(DistRanks, InexactMeansAreStillIdenticalOnEveryRank) {
  std::vector<float> v(1001);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 1.0f / static_cast<float>(i + 3 + 7 * dist::rank());
  dist::allreduce_mean({{v.data(), static_cast<int64_t>(v.size())}});
  expect_identical_on_every_rank(v, "1/x means");
}

TEST(DistRanks, DoubleSumsMeansBroadcastAndAllgather) {
  const int n = dist::world_size(), r = dist::rank();
  double s[3] = {1.0 * r, 2.0, -0.5 * r};
  dist::allreduce_sum(s, 3);
  EXPECT_EQ(s[0], n * (n - 1) / 2.0);
  EXPECT_EQ(s[1], 2.0 * n);
  EXPECT_EQ(s[2], -0.25 * n * (n - 1));
  double m[2] = {static_cast<double>(r), 4.0};
  dist::allreduce_mean(m, 2);
  EXPECT_DOUBLE_EQ(m[0], (n - 1) / 2.0);
  EXPECT_EQ(m[1], 4.0);
  EXPECT_EQ(dist::broadcast(100 + r), 100);
  const std::vector<uint64_t> all = dist::allgather(static_cast<uint64_t>(7 * r + 1));
  ASSERT_EQ(all.size(), static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) EXPECT_EQ(all[static_cast<size_t>(k)], static_cast<uint64_t>(7 * k + 1));
  const dist::Stats st = dist::stats();
  EXPECT_GT(st.calls, 0);
  EXPECT_GT(st.bytes, 0);
}

TEST(DistRanks, ReplicaCheckNamesTheRanksThatDiffer) {
  std::vector<float> p = {1.0f, 2.0f, 3.0f};
  EXPECT_NO_THROW(dist::check_replicas(dist::checksum({{p.data(), 3}}), "parameters after step 4"));
  if (dist::rank() == 1) p[2] = 3.0000002f;  // one ulp away on rank 1 only
  try {
    dist::check_replicas(dist::checksum({{p.data(), 3}}), "parameters after step 9");
    FAIL() << "expected DistError on every rank";
  } catch (const dist::DistError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("parameters after step 9 of rank(s) 1 differ from rank 0's"), std::string::npos) << m;
  }
}
