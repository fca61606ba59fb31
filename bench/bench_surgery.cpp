// Surgery benchmarks: Surgeon::combine() at P = 10^7 parameters (K = 1 auxiliary loss, with
// diagnostics, as TrainStep calls it) for every method, next to a plain memcpy and saxpy over the
// same size measured in the same run.
//
// Surgery is O(P) and memory-bound: a method streams its gradients (and EMA) once or twice. Counters:
//   GB/s, frac_of_copy_bw   logical bytes (each input read once, each output written once: g0, g1,
//                           d, plus the EMA read and written for a stateful method), per
//                           bench_common.h's convention;
//   moved_GB/s              the bytes the fused passes actually stream (Surgeon::last_bytes_moved():
//                           each distinct buffer once per pass), i.e. the achieved bandwidth;
//   moved_per_P             those bytes divided by 4P: how many float vectors cross memory per call.
// Names: "surgery/<method>/P:10000000", and "surgery/raw_memcpy|raw_saxpy/P:10000000".
#include <cblas.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.h"
#include "core/grad_vector.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace {

constexpr int64_t kP = 10000000;

GradVector filled(int64_t n, uint64_t seed) {
  GradVector v(n);
  Generator gen(seed);
  float* p = v.data();
  for (int64_t i = 0; i < n; ++i) p[i] = gen.uniform() - 0.5f;
  return v;
}

struct Inputs {
  GradVector g0 = filled(kP, 1), g1 = filled(kP, 2), d = GradVector(kP);
};

Inputs& inputs() {
  static Inputs in;
  return in;
}

// method, options, number of EMA buffers it reads and writes (for the logical byte count).
void bench_combine(benchmark::State& state, const std::string& method, surgery::SurgeonOptions opts, int emas) {
  Inputs& in = inputs();
  auto s = surgery::make_surgeon(method, opts);
  surgery::SurgeryDiagnostics diag;
  const std::vector<const GradVector*> grads{&in.g0, &in.g1};
  const double seconds = bench::time_loop(state, [&] { s->combine(grads, {}, in.d, &diag); });
  const double logical = (3.0 + 2.0 * emas) * kP * sizeof(float);
  bench::set_byte_counters(state, logical, seconds);
  const double moved = static_cast<double>(s->last_bytes_moved());
  state.counters["moved_GB/s"] = benchmark::Counter(moved * 1e-9 / seconds);
  state.counters["moved_per_P"] = benchmark::Counter(moved / (kP * sizeof(float)));
  benchmark::DoNotOptimize(in.d.data());
}

void BM_mixed(benchmark::State& s) { bench_combine(s, "mixed", surgery::SurgeonOptions().lambda(0.5), 0); }
void BM_bloop(benchmark::State& s) { bench_combine(s, "bloop", surgery::SurgeonOptions().lambda(0.5).rho(0.01), 1); }
void BM_bloop_rho1(benchmark::State& s) {
  bench_combine(s, "bloop", surgery::SurgeonOptions().lambda(0.5).rho(1.0), 0);
}
void BM_db(benchmark::State& s) { bench_combine(s, "dynamic-barrier", surgery::SurgeonOptions().lambda(0.5), 0); }
void BM_pcgrad(benchmark::State& s) { bench_combine(s, "pcgrad", surgery::SurgeonOptions().lambda(0.5), 0); }
void BM_pcgrad_ema(benchmark::State& s) {
  bench_combine(s, "pcgrad", surgery::SurgeonOptions().lambda(0.5).rho(0.01), 2);
}

// dst = src over the same P, parallel like Scalpel's loops: read + write bytes.
void BM_raw_memcpy(benchmark::State& state) {
  Inputs& in = inputs();
  const float* src = in.g0.data();
  float* dst = in.d.data();
  const double seconds = bench::time_loop(state, [&] {
    parallel_for(kP, 1 << 16, [=](int64_t b, int64_t e) {
      std::memcpy(dst + b, src + b, static_cast<size_t>(e - b) * sizeof(float));
    });
  });
  bench::set_byte_counters(state, 2.0 * kP * sizeof(float), seconds);
}

// d += a g0 with OpenBLAS: two reads and one write per element.
void BM_raw_saxpy(benchmark::State& state) {
  Inputs& in = inputs();
  const double seconds =
      bench::time_loop(state, [&] { cblas_saxpy(static_cast<int>(kP), 1e-3f, in.g0.data(), 1, in.d.data(), 1); });
  bench::set_byte_counters(state, 3.0 * kP * sizeof(float), seconds);
}

BENCHMARK(BM_raw_memcpy)->Name("surgery/raw_memcpy/P:10000000")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_saxpy)->Name("surgery/raw_saxpy/P:10000000")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mixed)->Name("surgery/mixed/P:10000000")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bloop)->Name("surgery/bloop_rho0.01/P:10000000")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bloop_rho1)->Name("surgery/bloop_rho1/P:10000000")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_db)->Name("surgery/dynamic-barrier_rho1/P:10000000")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_pcgrad)->Name("surgery/pcgrad_rho1/P:10000000")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_pcgrad_ema)->Name("surgery/pcgrad_rho0.01/P:10000000")->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace scalpel

SCALPEL_BENCH_MAIN();
