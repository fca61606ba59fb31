// core/dist.h in a world of one (no launcher; every build): the collectives leave the data alone,
// the checksum sees every bit, the launcher's world size is read from its environment, the
// global-batch rescaling of the studies, and the data-parallel flags of the runner.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/dist.h"
#include "data/loader.h"
#include "experiments/runner/runner.h"
#include "experiments/study_common.h"

using namespace scalpel;

TEST(DistOneProcess, KnowsWhetherItWasBuiltWithMpi) {
  EXPECT_EQ(dist::built_with_mpi(), SCALPEL_TEST_HAVE_MPI != 0);  // CMake's SCALPEL_HAVE_MPI
}

TEST(DistOneProcess, CollectivesAreTheIdentity) {
  ASSERT_FALSE(dist::active());
  EXPECT_EQ(dist::rank(), 0);
  EXPECT_EQ(dist::world_size(), 1);
  EXPECT_EQ(dist::rank_label(), "");
  std::vector<float> a = {1.5f, -2.0f, 3.25f};
  dist::allreduce_mean({{a.data(), 3}});
  EXPECT_EQ(a, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  double d[2] = {0.1, 7.0};
  dist::allreduce_sum(d, 2);
  dist::allreduce_mean(d, 2);
  EXPECT_EQ(d[0], 0.1);
  EXPECT_EQ(d[1], 7.0);
  EXPECT_EQ(dist::broadcast(42), 42);
  EXPECT_EQ(dist::allgather(9), (std::vector<uint64_t>{9}));
  EXPECT_NO_THROW(dist::check_replicas(123, "parameters"));
  EXPECT_EQ(dist::stats().calls, 0);  // nothing was communicated
}

TEST(DistOneProcess, ChecksumSeesEveryBitAndNotTheSplit) {
  std::vector<float> v = {1.0f, 2.0f, 3.0f, 4.0f};
  const uint64_t whole = dist::checksum({{v.data(), 4}});
  EXPECT_EQ(dist::checksum({{v.data(), 1}, {v.data() + 1, 0}, {v.data() + 1, 3}}), whole);
  for (size_t i = 0; i < v.size(); ++i) {
    std::vector<float> w = v;
    w[i] = std::nextafter(w[i], 10.0f);  // one ulp
    EXPECT_NE(dist::checksum({{w.data(), 4}}), whole) << i;
  }
  std::vector<float> z = {0.0f}, nz = {-0.0f};
  EXPECT_NE(dist::checksum({{z.data(), 1}}), dist::checksum({{nz.data(), 1}}));
}

TEST(DistOneProcess, LauncherWorldSizeFromTheEnvironment) {
  const char* vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
  for (const char* v : vars) ASSERT_EQ(std::getenv(v), nullptr) << v << " is set: run this test without a launcher";
  EXPECT_EQ(dist::launcher_world_size(), 1);
  for (const char* v : vars) {
    setenv(v, "4", 1);
    EXPECT_EQ(dist::launcher_world_size(), 4) << v;
    setenv(v, "four", 1);
    EXPECT_EQ(dist::launcher_world_size(), 1) << v << "=four is not a size";
    unsetenv(v);
  }
}

TEST(DistOneProcess, GlobalBatchMeanRescalesOnlyUnequalShards) {
  const Tensor loss = Tensor::scalar(2.0f);
  data::Batch b;
  b.indices = {0, 1, 2};
  b.global_size = 3;  // unsharded
  EXPECT_TRUE(experiments::global_batch_mean(loss, b).same(loss));
  b.global_size = 8;  // 3 of 8 rows in a world of one: weight 3/8
  EXPECT_FLOAT_EQ(experiments::global_batch_mean(loss, b).item(), 2.0f * 3.0f / 8.0f);
}

namespace {
experiments::Experiment tiny() {
  experiments::Experiment e;
  e.name = "scalpel-dist-test";
  e.run = [](experiments::RunContext&) {};
  return e;
}
}  // namespace

TEST(DistOneProcess, RunnerFlagsOfDataParallelism) {
  const auto c = experiments::parse_config(tiny(), {"--batch-size", "64", "--batch-per-rank", "--out", "x"});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->world_size, 1);
  EXPECT_EQ(c->batch_size, 64);  // per rank × 1 rank
  EXPECT_EQ(c->dist_check_every, 100);
  EXPECT_EQ(c->to_json()["world_size"], 1);
  const auto d = experiments::parse_config(tiny(), {"--dist-check-every", "0", "--out", "x"});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->dist_check_every, 0);
  try {
    experiments::parse_config(tiny(), {"--dist-check-every", "-3", "--out", "x"});
    FAIL() << "expected a usage error";
  } catch (const experiments::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--dist-check-every"), std::string::npos) << e.what();
  }
}
