// Data-parallel training across processes: the few collectives Scalpel needs, on OpenMPI.
//
// A process started by `mpirun -np N` (or Slurm's `srun`) is one rank of a world of N; every
// other process is a world of one, and every function below is then a cheap no-op, so library
// code calls them unconditionally. MPI is optional at build time (CMake option SCALPEL_MPI): a
// build without it runs one process only, and refuses to start under a launcher with N > 1
// (init() throws, naming the build option) instead of silently training N unrelated copies.
//
//   dist::init(&argc, &argv);                      // in main: MPI_Init when under a launcher
//   if (dist::rank() == 0) write_outputs();        // rank 0 writes, every rank computes
//   dist::allreduce_mean({{g0.data(), n}, {g1.data(), n}});   // packed, in buckets
//
// Reductions are deterministic and identical on every rank: each bucket is summed onto rank 0
// with MPI_Reduce (in the library's fixed order for that N and size), made a mean there (sum ×
// 1/N) and broadcast, so every rank receives the same bits, and two runs with the same N give the
// same numbers. (MPI_Allreduce does not promise identical bits on every rank.)
// Times and byte counts of the collectives are kept (stats()) for the scaling benchmark.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace scalpel {
namespace dist {

// A rank holds parameters that differ from rank 0's (the replica check), or a collective failed.
class DistError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True when this build can run under MPI (configured with SCALPEL_MPI and MPI found).
bool built_with_mpi();
// The world size a launcher asked for, from its environment (OMPI_COMM_WORLD_SIZE under mpirun,
// PMI_SIZE, SLURM_STEP_NUM_TASKS under srun); 1 when there is none.
int launcher_world_size();

// Initialises MPI when a launcher started this process (thread level FUNNELED:
// only the main thread communicates; OpenMP and the loader's worker thread do not). Idempotent.
// Throws DistError when N > 1 and the build has no MPI.
void init(int* argc, char*** argv);
// MPI_Finalize when init() started MPI. Idempotent.
void finalize();
// Ends every rank of the job at once (MPI_Abort) with exit code `code`; in a world of one it
// returns and the caller exits normally. For the command-line layer only, after the message was
// printed: a rank that failed alone must not leave the others waiting in a collective.
void abort_job(int code);

int rank();        // 0 .. world_size()-1
int world_size();  // 1 without a launcher (and inside a Solo scope)
inline bool active() { return world_size() > 1; }
// "rank r of N" for messages; empty in a world of one.
std::string rank_label();

// The job's own rank and size, also inside a Solo scope.
int job_rank();
int job_size();

// While alive, this rank is a world of one (rank() 0, world_size() 1, every collective a no-op):
// for work a rank does alone, e.g. its share of a sweep's runs (--sweep-parallel). Not nested.
class Solo {
 public:
  Solo();
  ~Solo();
  Solo(const Solo&) = delete;
  Solo& operator=(const Solo&) = delete;
};

// One contiguous piece of a packed reduction.
struct FloatSpan {
  float* data;
  int64_t size;
};

// Replaces every span by its mean over the ranks (all spans reduced as one packed buffer, in
// buckets of at most bucket_floats() floats). Every rank must pass spans of the same sizes.
void allreduce_mean(const std::vector<FloatSpan>& spans);
// The same for a few doubles (loss values, metric sums).
void allreduce_mean(double* data, int64_t n);
void allreduce_sum(double* data, int64_t n);
// Every rank's value, indexed by rank.
std::vector<uint64_t> allgather(uint64_t value);
// Rank 0's value on every rank.
int64_t broadcast(int64_t value);

// Bucket size of allreduce_mean (default 4 Mi floats = 16 MiB; env SCALPEL_DIST_BUCKET_FLOATS).
int64_t bucket_floats();
// Sets it (0: back to the default); every rank must use the same value.
void set_bucket_floats(int64_t floats);

// Time and volume of this process's collectives since the start.
struct Stats {
  double seconds = 0.0;  // wall time inside the collectives (including waiting for other ranks)
  int64_t bytes = 0;     // payload bytes passed to the collectives
  int64_t calls = 0;
};
Stats stats();

// A 64-bit checksum of float buffers (FNV-1a over the bytes), for the replica check: equal
// parameters give equal checksums on every rank.
uint64_t checksum(const std::vector<FloatSpan>& spans);
// Throws DistError naming every rank whose `value` differs from rank 0's and `what` (e.g.
// "parameters after step 200"). Collective: every rank must call it.
void check_replicas(uint64_t value, const std::string& what);

}  // namespace dist
}  // namespace scalpel
