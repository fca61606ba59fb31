// main() of test_dist_ranks, the collective tests that CTest runs under `mpirun -np N`: MPI is
// started before GoogleTest and every rank runs every test; the job fails when a test failed on
// any rank (the ranks agree on the exit code, so mpirun reports one failure, not a hang).
#include <gtest/gtest.h>

#include <iostream>

#include "core/dist.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  scalpel::dist::init(&argc, &argv);
  if (scalpel::dist::rank() != 0) {  // one rank's report is enough; failures still set the code
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  double any = failed;
  scalpel::dist::allreduce_sum(&any, 1);
  if (any > 0 && !failed) std::cerr << "rank " << scalpel::dist::rank() << ": a test failed on another rank\n";
  scalpel::dist::finalize();
  return any > 0 ? 1 : 0;
}
