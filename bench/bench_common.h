// Shared helpers for every Scalpel benchmark binary (bench/bench_*.cpp, Google Benchmark).
//
// Each binary ends with SCALPEL_BENCH_MAIN(); instead of BENCHMARK_MAIN(). That main:
//   1. parses the usual --benchmark_* flags;
//   2. applies SCALPEL_THREADS=n (if set) through scalpel::set_num_threads, i.e. to OpenMP and
//      OpenBLAS alike, and SCALPEL_BENCH_CLOCK (below);
//   3. measures, IN THE SAME RUN, the raw cblas_sgemm peak (square N = SCALPEL_PEAK_N, default
//      2048; one warm-up, then 5 timed calls; best and median kept) and a parallel memcpy
//      bandwidth (64 MiB, best of 5);
//   4. prints a header (threading_summary(): threads, OpenBLAS core name and parallel mode,
//      OPENBLAS_CORETYPE; OMP_* variables; CPU model; UTC date; clock; the two reference figures)
//      and stores the same facts in the JSON "context" block (keys scalpel_*), so
//      scripts/run-bench.sh can report every figure against the peak measured alongside it.
// The environment is reported, never overridden: compare runs only under one and the same
// OPENBLAS_CORETYPE / OMP_WAIT_POLICY / thread count.
//
// Inside a benchmark (register it with ->UseRealTime(): BLAS and our loops are multi-threaded):
//   const double s = scalpel::bench::time_loop(state, [&] { ...one iteration... });
//   scalpel::bench::set_flop_counters(state, flops_per_iteration, s);  // GFLOP/s, frac_of_sgemm_peak
//   scalpel::bench::set_byte_counters(state, bytes_per_iteration, s);  // GB/s, frac_of_copy_bw
// time_loop() runs one untimed warm-up call, then the usual `for (auto _ : state)` loop, and returns
// seconds per iteration. With a hand-written loop, omit `s`: the counters then become Google
// Benchmark rate counters over real time (same JSON values). GB/s counts the bytes an op must touch
// logically (each input read once, each output written once), in units of 1e9 bytes.
//
// Comparing an implementation with a reference doing the same work (register with
// ->UseManualTime()):
//   const auto t = scalpel::bench::time_paired(state, reference_fn, candidate_fn);
//   set_flop_counters(state, flops, t.candidate); state.counters["vs_raw"] = t.ratio();
// The two run interleaved, alternating which goes first, so load from other processes hits both
// alike. Naming convention understood by scripts/run-bench.sh: ".../tensor" is compared with its
// sibling ".../raw"; the "vs raw" column is the vs_raw counter when present, else the ratio of
// the two medians.
//
// SCALPEL_BENCH_CLOCK=cpu (requires SCALPEL_THREADS=1) times with the calling thread's CPU clock
// (user + system, so page faults count) instead of the wall clock: a load-robust way to compare
// implementations on a machine that other processes share.
#pragma once

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <time.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/parallel.h"

namespace scalpel {
namespace bench {

// Facts about the run, measured once per process (after SCALPEL_THREADS is applied).
struct Environment {
  std::string threading;  // scalpel::threading_summary()
  std::string cpu_model;  // "model name" from /proc/cpuinfo
  std::string date_utc;   // ISO 8601
  int threads = 0;
  int64_t peak_n = 0;              // square size of the sgemm peak measurement
  double sgemm_peak_gflops = 0;    // best of the timed calls
  double sgemm_median_gflops = 0;  // median of the timed calls
  double copy_gbs = 0;             // parallel memcpy, read + write bytes, best of 5
};

namespace detail {

// SCALPEL_BENCH_CLOCK=cpu: time with this thread's CPU clock instead of the wall clock (see top).
inline bool& use_cpu_clock() {
  static bool cpu = false;
  return cpu;
}

// Seconds on the benchmark clock: wall (steady) by default, this thread's CPU time when chosen.
inline double now() {
  if (use_cpu_clock()) {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double seconds_since(double t0) { return now() - t0; }

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

inline std::string date_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], FreeDeleter>;

inline Buffer aligned_buffer(int64_t n, float value) {
  const size_t bytes = ((static_cast<size_t>(n) * sizeof(float) + 63) / 64) * 64;
  Buffer b(static_cast<float*>(std::aligned_alloc(64, bytes)));
  if (!b) throw std::bad_alloc();
  float* p = b.get();
  parallel_for(n, 1 << 16, [=](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) p[i] = value;
  });
  return b;
}

// Raw cblas_sgemm C = A·B on n x n matrices: one warm-up call, then `reps` timed calls.
inline void measure_sgemm(int64_t n, int reps, double& best, double& median) {
  Buffer a = aligned_buffer(n * n, 0.5f), b = aligned_buffer(n * n, 0.25f), c = aligned_buffer(n * n, 0.0f);
  const int ni = static_cast<int>(n);
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, a.get(), ni, b.get(), ni, 0.0f, c.get(),
                ni);
  };
  call();
  std::vector<double> gflops;
  for (int r = 0; r < reps; ++r) {
    const double t0 = detail::now();
    call();
    gflops.push_back(2.0 * static_cast<double>(n) * n * n / seconds_since(t0) * 1e-9);
  }
  std::sort(gflops.begin(), gflops.end());
  best = gflops.back();
  median = gflops[gflops.size() / 2];
}

// Parallel memcpy of 64 MiB split like Scalpel's own loops; read + write bytes per second.
inline double measure_copy_gbs(int reps) {
  const int64_t n = int64_t{1} << 24;
  Buffer src = aligned_buffer(n, 1.0f), dst = aligned_buffer(n, 0.0f);
  const float* s = src.get();
  float* d = dst.get();
  auto call = [&] {
    parallel_for(n, 1 << 16,
                 [=](int64_t b, int64_t e) { std::memcpy(d + b, s + b, static_cast<size_t>(e - b) * sizeof(float)); });
  };
  call();
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const double t0 = detail::now();
    call();
    best = std::max(best, 2.0 * static_cast<double>(n) * sizeof(float) / seconds_since(t0) * 1e-9);
  }
  return best;
}

// Parses a positive integer environment variable; 0 when unset; -1 when malformed.
inline int64_t env_positive(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x <= 0) return -1;
  return x;
}

inline std::string env_or_unset(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string("(unset)");
}

inline Environment& storage() {
  static Environment env;
  return env;
}

inline bool& measured() {
  static bool done = false;
  return done;
}

}  // namespace detail

// Measures (first call only) and returns the run's environment. run_main() calls it after applying
// SCALPEL_THREADS; benchmarks read it through the helpers below.
inline const Environment& environment() {
  Environment& env = detail::storage();
  if (!detail::measured()) {
    detail::measured() = true;
    env.threading = threading_summary();
    env.cpu_model = detail::cpu_model();
    env.date_utc = detail::date_utc();
    env.threads = num_threads();
    const int64_t n = detail::env_positive("SCALPEL_PEAK_N");
    env.peak_n = n > 0 ? n : 2048;
    detail::measure_sgemm(env.peak_n, 5, env.sgemm_peak_gflops, env.sgemm_median_gflops);
    env.copy_gbs = detail::measure_copy_gbs(5);
  }
  return env;
}

inline double sgemm_peak_gflops() { return environment().sgemm_peak_gflops; }

// Runs body() once untimed (first touch of outputs, BLAS buffers), then the benchmark loop;
// returns the wall-clock seconds per iteration, for the counter helpers below.
template <class F>
double time_loop(benchmark::State& state, F&& body) {
  body();
  const double t0 = detail::now();
  for (auto _ : state) body();
  const auto iters = std::max<benchmark::IterationCount>(state.iterations(), 1);
  return detail::seconds_since(t0) / static_cast<double>(iters);
}

// Interleaved timing of a reference and a candidate doing the same work: each iteration runs
// both, alternating which goes first, so load from other processes hits both alike. Register the
// benchmark with ->UseManualTime(): the iteration time reported is the candidate's. Returns wall
// seconds per iteration of each; ratio = reference / candidate (1.0 = as fast as the reference).
struct PairedTimes {
  double reference = 0, candidate = 0;
  double ratio() const { return candidate > 0 ? reference / candidate : 0.0; }
};
template <class R, class C>
PairedTimes time_paired(benchmark::State& state, R&& reference, C&& candidate) {
  reference();
  candidate();
  PairedTimes t;
  int64_t i = 0;
  auto timed = [](auto& f) {
    const double t0 = detail::now();
    f();
    return detail::seconds_since(t0);
  };
  for (auto _ : state) {
    double r, c;
    if (i++ % 2 == 0) {
      r = timed(reference);
      c = timed(candidate);
    } else {
      c = timed(candidate);
      r = timed(reference);
    }
    t.reference += r;
    t.candidate += c;
    state.SetIterationTime(c);
  }
  const double iters = static_cast<double>(std::max<int64_t>(i, 1));
  t.reference /= iters;
  t.candidate /= iters;
  return t;
}

namespace detail {
// A rate over the loop's real time (seconds <= 0), or a plain value from seconds per iteration.
inline benchmark::Counter rate(double per_iteration, double seconds) {
  if (seconds > 0) return benchmark::Counter(per_iteration / seconds);
  return benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace detail

// GFLOP/s and frac_of_sgemm_peak (the same rate divided by this run's raw sgemm peak). Pass the
// seconds per iteration from time_loop(); without it the counters become Google Benchmark rate
// counters over the real time (same values in the JSON, shown with a "/s" suffix on the console).
inline void set_flop_counters(benchmark::State& state, double flops_per_iteration, double seconds = 0) {
  state.counters["GFLOP/s"] = detail::rate(flops_per_iteration * 1e-9, seconds);
  state.counters["frac_of_sgemm_peak"] = detail::rate(flops_per_iteration * 1e-9 / sgemm_peak_gflops(), seconds);
}

// GB/s (1e9 bytes) and frac_of_copy_bw (the same rate divided by this run's memcpy bandwidth).
inline void set_byte_counters(benchmark::State& state, double bytes_per_iteration, double seconds = 0) {
  state.counters["GB/s"] = detail::rate(bytes_per_iteration * 1e-9, seconds);
  state.counters["frac_of_copy_bw"] = detail::rate(bytes_per_iteration * 1e-9 / environment().copy_gbs, seconds);
}

// The body of SCALPEL_BENCH_MAIN(): flags, threads, header, then every registered benchmark.
inline int run_main(int argc, char** argv) {
  bool list_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--benchmark_list_tests", 22) == 0) list_only = true;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const int64_t threads = detail::env_positive("SCALPEL_THREADS");
  if (threads < 0) {
    std::fprintf(stderr, "SCALPEL_THREADS: expected a positive integer, found '%s'\n", std::getenv("SCALPEL_THREADS"));
    return 2;
  }
  const int64_t peak_n = detail::env_positive("SCALPEL_PEAK_N");
  if (peak_n < 0 || peak_n > 8192) {
    std::fprintf(stderr, "SCALPEL_PEAK_N: expected an integer in [1, 8192] (e.g. 1024), found '%s'\n",
                 std::getenv("SCALPEL_PEAK_N"));
    return 2;
  }
  if (threads > 0) set_num_threads(static_cast<int>(threads));
  if (const char* clock = std::getenv("SCALPEL_BENCH_CLOCK")) {
    const std::string c = clock;
    if (c == "cpu") {
      if (num_threads() != 1) {
        std::fprintf(stderr,
                     "SCALPEL_BENCH_CLOCK=cpu measures only the calling thread; it needs SCALPEL_THREADS=1 "
                     "(found %d threads)\n",
                     num_threads());
        return 2;
      }
      detail::use_cpu_clock() = true;
    } else if (c != "wall" && !c.empty()) {
      std::fprintf(stderr, "SCALPEL_BENCH_CLOCK: expected 'wall' or 'cpu', found '%s'\n", clock);
      return 2;
    }
  }
  if (!list_only) {
    const Environment& env = environment();
    std::printf("scalpel bench | %s\n", env.threading.c_str());
    std::printf("scalpel bench | OMP_NUM_THREADS=%s OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s OMP_PROC_BIND=%s\n",
                detail::env_or_unset("OMP_NUM_THREADS").c_str(), detail::env_or_unset("OMP_WAIT_POLICY").c_str(),
                detail::env_or_unset("GOMP_SPINCOUNT").c_str(), detail::env_or_unset("OMP_PROC_BIND").c_str());
    std::printf("scalpel bench | cpu: %s | date: %s | clock: %s\n", env.cpu_model.c_str(), env.date_utc.c_str(),
                detail::use_cpu_clock() ? "thread CPU time" : "wall");
    std::printf(
        "scalpel bench | raw cblas_sgemm %lldx%lldx%lld: peak %.1f GFLOP/s, median %.1f GFLOP/s | "
        "parallel memcpy: %.1f GB/s\n",
        static_cast<long long>(env.peak_n), static_cast<long long>(env.peak_n), static_cast<long long>(env.peak_n),
        env.sgemm_peak_gflops, env.sgemm_median_gflops, env.copy_gbs);
    std::fflush(stdout);
    benchmark::AddCustomContext("scalpel_threading", env.threading);
    benchmark::AddCustomContext("scalpel_threads", std::to_string(env.threads));
    benchmark::AddCustomContext("scalpel_openblas_core", blas_corename());
    for (const char* var :
         {"OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND"}) {
      benchmark::AddCustomContext(std::string("scalpel_env_") + var, detail::env_or_unset(var));
    }
    benchmark::AddCustomContext("scalpel_cpu_model", env.cpu_model);
    benchmark::AddCustomContext("scalpel_date_utc", env.date_utc);
    benchmark::AddCustomContext("scalpel_sgemm_peak_n", std::to_string(env.peak_n));
    benchmark::AddCustomContext("scalpel_sgemm_peak_gflops", std::to_string(env.sgemm_peak_gflops));
    benchmark::AddCustomContext("scalpel_sgemm_median_gflops", std::to_string(env.sgemm_median_gflops));
    benchmark::AddCustomContext("scalpel_copy_gbs", std::to_string(env.copy_gbs));
    benchmark::AddCustomContext("scalpel_clock", detail::use_cpu_clock() ? "thread_cpu" : "wall");
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
}  // namespace scalpel

// Use instead of BENCHMARK_MAIN() in every bench/bench_*.cpp.
#define SCALPEL_BENCH_MAIN()                                                       \
  int main(int argc, char** argv) { return scalpel::bench::run_main(argc, argv); } \
  static_assert(true, "")
