#include "core/dist.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#ifdef SCALPEL_HAVE_MPI
#include <mpi.h>
#endif

namespace scalpel {
namespace dist {

namespace {

struct State {
  bool started = false;  // init() called MPI_Init
  bool finalized = false;
  bool solo = false;  // inside a Solo scope
  int rank = 0;
  int size = 1;
  Stats stats;
  std::vector<float> send, block;
  std::vector<double> dsend, dblock;
};

State& state() {
  static State s;
  return s;
}

int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (end && *end == '\0' && n > 0 && n < (1 << 24)) ? static_cast<int>(n) : 0;
}

// Adds the time since `t0` and `bytes` to the statistics.
void account(std::chrono::steady_clock::time_point t0, int64_t bytes) {
  Stats& s = state().stats;
  s.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.bytes += bytes;
  ++s.calls;
}

#ifdef SCALPEL_HAVE_MPI
template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

// send: [m] with m a multiple of N (zero-padded). Every rank sums one block of m/N in `block`,
// then the blocks are gathered back into `send`: identical bits on every rank.
template <typename T>
void reduce_bucket(std::vector<T>& send, std::vector<T>& block, int64_t m, bool mean) {
  const int n = state().size;
  const int64_t per = m / n;
  block.resize(static_cast<size_t>(per));
  MPI_Reduce_scatter_block(send.data(), block.data(), static_cast<int>(per), mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD);
  if (mean) {
    const T inv = T(1) / static_cast<T>(n);
    for (T& v : block) v *= inv;
  }
  MPI_Allgather(block.data(), static_cast<int>(per), mpi_type<T>(), send.data(), static_cast<int>(per), mpi_type<T>(),
                MPI_COMM_WORLD);
}
#endif

void reduce_doubles(double* data, int64_t n, bool mean) {
  if (!active() || n <= 0) return;
#ifdef SCALPEL_HAVE_MPI
  const auto t0 = std::chrono::steady_clock::now();
  State& s = state();
  const int64_t m = (n + s.size - 1) / s.size * s.size;
  s.dsend.assign(static_cast<size_t>(m), 0.0);
  std::copy(data, data + n, s.dsend.begin());
  reduce_bucket(s.dsend, s.dblock, m, mean);
  std::copy(s.dsend.begin(), s.dsend.begin() + n, data);
  account(t0, n * static_cast<int64_t>(sizeof(double)));
#else
  (void)data;
  (void)mean;
#endif
}

}  // namespace

bool built_with_mpi() {
#ifdef SCALPEL_HAVE_MPI
  return true;
#else
  return false;
#endif
}

int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const int n = env_int(name);
    if (n > 0) return n;
  }
  return 1;
}

void init(int* argc, char*** argv) {
  State& s = state();
  if (s.started || s.finalized) return;
  const bool launched = std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") ||
                        std::getenv("SLURM_STEP_NUM_TASKS") || std::getenv("PMIX_RANK");
  if (!launched) return;
#ifdef SCALPEL_HAVE_MPI
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  s.started = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &s.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &s.size);
#else
  (void)argc;
  (void)argv;
  const int n = launcher_world_size();
  if (n > 1) {
    throw DistError("this build of Scalpel has no MPI, but a launcher started it as one of " + std::to_string(n) +
                    " ranks; run scripts/bootstrap.sh (it installs libopenmpi-dev) and rebuild (CMake option "
                    "SCALPEL_MPI=ON, the default when MPI is found), or run one process without mpirun");
  }
#endif
}

void finalize() {
  State& s = state();
#ifdef SCALPEL_HAVE_MPI
  if (s.started && !s.finalized) MPI_Finalize();
#endif
  s.finalized = true;
}

void abort_job(int code) {
#ifdef SCALPEL_HAVE_MPI
  if (active()) MPI_Abort(MPI_COMM_WORLD, code);
#else
  (void)code;
#endif
}

int rank() { return state().solo ? 0 : state().rank; }
int world_size() { return state().solo ? 1 : state().size; }
int job_rank() { return state().rank; }
int job_size() { return state().size; }

Solo::Solo() { state().solo = true; }
Solo::~Solo() { state().solo = false; }

std::string rank_label() {
  if (!active()) return "";
  return "rank " + std::to_string(rank()) + " of " + std::to_string(world_size());
}

namespace {
int64_t default_bucket_floats() {
  const int v = env_int("SCALPEL_DIST_BUCKET_FLOATS");
  return v > 0 ? static_cast<int64_t>(v) : int64_t{4} << 20;
}
int64_t& bucket_setting() {
  static int64_t b = default_bucket_floats();
  return b;
}
}  // namespace

int64_t bucket_floats() { return bucket_setting(); }
void set_bucket_floats(int64_t floats) { bucket_setting() = floats > 0 ? floats : default_bucket_floats(); }

void allreduce_mean(const std::vector<FloatSpan>& spans) {
  if (!active()) return;
#ifdef SCALPEL_HAVE_MPI
  const auto t0 = std::chrono::steady_clock::now();
  State& s = state();
  int64_t total = 0;
  for (const FloatSpan& sp : spans) total += sp.size;
  const int64_t cap = std::max<int64_t>(s.size, bucket_floats() / s.size * s.size);
  s.send.resize(static_cast<size_t>(std::min(cap, (total + s.size - 1) / s.size * s.size)));
  // Walk the spans in buckets: pack, reduce, unpack.
  size_t span = 0;
  int64_t offset = 0;  // within spans[span]
  while (span < spans.size()) {
    int64_t filled = 0;
    size_t span_end = span;
    int64_t offset_end = offset;
    while (span_end < spans.size() && filled < cap) {
      const int64_t take = std::min(cap - filled, spans[span_end].size - offset_end);
      if (take > 0)  // an empty span may have no storage at all
        std::memcpy(s.send.data() + filled, spans[span_end].data + offset_end,
                    sizeof(float) * static_cast<size_t>(take));
      filled += take;
      offset_end += take;
      if (offset_end == spans[span_end].size) {
        ++span_end;
        offset_end = 0;
      }
    }
    if (filled == 0) break;
    const int64_t m = (filled + s.size - 1) / s.size * s.size;
    std::fill(s.send.begin() + filled, s.send.begin() + m, 0.0f);
    reduce_bucket(s.send, s.block, m, true);
    int64_t read = 0;
    while (read < filled) {
      const int64_t give = std::min(filled - read, spans[span].size - offset);
      if (give > 0)
        std::memcpy(spans[span].data + offset, s.send.data() + read, sizeof(float) * static_cast<size_t>(give));
      read += give;
      offset += give;
      if (offset == spans[span].size) {
        ++span;
        offset = 0;
      }
    }
    while (span < spans.size() && spans[span].size == 0) ++span;
  }
  account(t0, total * static_cast<int64_t>(sizeof(float)));
#else
  (void)spans;
#endif
}

void allreduce_mean(double* data, int64_t n) { reduce_doubles(data, n, true); }
void allreduce_sum(double* data, int64_t n) { reduce_doubles(data, n, false); }

std::vector<uint64_t> allgather(uint64_t value) {
  std::vector<uint64_t> out(static_cast<size_t>(world_size()), value);
#ifdef SCALPEL_HAVE_MPI
  if (active()) {
    const auto t0 = std::chrono::steady_clock::now();
    unsigned long long v = value;
    std::vector<unsigned long long> all(out.size());
    MPI_Allgather(&v, 1, MPI_UNSIGNED_LONG_LONG, all.data(), 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    for (size_t r = 0; r < all.size(); ++r) out[r] = all[r];
    account(t0, static_cast<int64_t>(sizeof(v)));
  }
#endif
  return out;
}

int64_t broadcast(int64_t value) {
#ifdef SCALPEL_HAVE_MPI
  if (active()) {
    const auto t0 = std::chrono::steady_clock::now();
    long long v = value;
    MPI_Bcast(&v, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    value = v;
    account(t0, static_cast<int64_t>(sizeof(v)));
  }
#endif
  return value;
}

void barrier() {
#ifdef SCALPEL_HAVE_MPI
  if (active()) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

Stats stats() { return state().stats; }
void reset_stats() { state().stats = Stats(); }

uint64_t checksum(const std::vector<FloatSpan>& spans) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a offset basis
  for (const FloatSpan& sp : spans) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sp.data);
    const size_t n = sizeof(float) * static_cast<size_t>(sp.size);
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ull;  // FNV prime
    }
  }
  return h;
}

void check_replicas(uint64_t value, const std::string& what) {
  if (!active()) return;
  const std::vector<uint64_t> all = allgather(value);
  std::string bad;
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) bad += (bad.empty() ? "" : ", ") + std::to_string(r);
  }
  if (!bad.empty()) {
    throw DistError("data-parallel replicas diverged: the " + what + " of rank(s) " + bad +
                    " differ from rank 0's; every rank must run the same model, seed, flags and thread count "
                    "(a rank-dependent random stream or a non-deterministic op breaks this)");
  }
}

}  // namespace dist
}  // namespace scalpel
