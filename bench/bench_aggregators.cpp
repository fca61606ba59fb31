// Multi-task aggregator benchmarks (issue 12, "Performance"): Surgeon::combine() of every
// registered multi-task method (multi_task_surgeon_names(), default options, with diagnostics as
// the training step asks for them) at T = 2, 3, 10 tasks and P = 10^7 floats, next to two
// references measured in the same run: a parallel memcpy of the task matrix (T·P floats) and one
// pure Gram-forming fused pass over the T gradients (run_fused_pass with only the Gram matrix),
// the cost issue 12's target is stated against ("within 1.5× of one Gram pass").
//
// Counters:
//   GB/s, frac_of_copy_bw  logical bytes: the T gradients read once and d written once, (T+1)·4P
//                          for every method (for memcpy: T·4P read + T·4P written; for the Gram
//                          pass: T·4P read), per bench_common.h's convention;
//   moved_GB/s             the bytes the method's passes actually stream (last_bytes_moved(): each
//                          distinct buffer once per pass; MoCo also reads and writes its T tracked
//                          gradients), i.e. the achieved bandwidth;
//   moved_per_TP           those bytes divided by 4·T·P.
// Names: "aggregate/<method>/tasks:<T>", "aggregate/raw_memcpy/tasks:<T>",
// "aggregate/raw_gram_pass/tasks:<T>", and "aggregate/{graddrop,moco}_nodiag/tasks:<T>" without
// diagnostics (MoCo's form a (2T)² Gram matrix instead of T²; GradDrop's are 2T+1 extra dot
// products per element).
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.h"
#include "core/grad_vector.h"
#include "optim/surgery/fused.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace {

constexpr int64_t kP = 10000000;
constexpr int kMaxTasks = 10;

GradVector filled(int64_t n, uint64_t seed) {
  GradVector v(n);
  Generator gen(seed);
  float* p = v.data();
  for (int64_t i = 0; i < n; ++i) p[i] = gen.uniform() - 0.5f;
  return v;
}

struct Inputs {
  std::vector<GradVector> g;
  GradVector d = GradVector(kP);
  GradVector copy = GradVector(kP * kMaxTasks);
  Inputs() {
    for (int k = 0; k < kMaxTasks; ++k) g.push_back(filled(kP, 100 + static_cast<uint64_t>(k)));
  }
};

Inputs& inputs() {
  static Inputs in;
  return in;
}

std::vector<const GradVector*> task_ptrs(int T) {
  std::vector<const GradVector*> p;
  for (int k = 0; k < T; ++k) p.push_back(&inputs().g[static_cast<size_t>(k)]);
  return p;
}

void bench_method(benchmark::State& state, const std::string& method, int T, bool with_diag) {
  Inputs& in = inputs();
  auto s = surgery::make_surgeon(method);
  surgery::SurgeryDiagnostics diag;
  const auto grads = task_ptrs(T);
  const double seconds = bench::time_loop(state, [&] { s->combine(grads, {}, in.d, with_diag ? &diag : nullptr); });
  bench::set_byte_counters(state, (T + 1.0) * kP * sizeof(float), seconds);
  const double moved = static_cast<double>(s->last_bytes_moved());
  state.counters["moved_GB/s"] = benchmark::Counter(moved * 1e-9 / seconds);
  state.counters["moved_per_TP"] = benchmark::Counter(moved / (static_cast<double>(T) * kP * sizeof(float)));
  benchmark::DoNotOptimize(in.d.data());
}

// The T×P task matrix copied, parallel like Scalpel's loops (one memcpy per gradient chunk).
void bench_memcpy(benchmark::State& state, int T) {
  Inputs& in = inputs();
  float* dst = in.copy.data();
  const double seconds = bench::time_loop(state, [&] {
    for (int k = 0; k < T; ++k) {
      const float* src = in.g[static_cast<size_t>(k)].data();
      float* out = dst + static_cast<int64_t>(k) * kP;
      parallel_for(kP, 1 << 16, [=](int64_t b, int64_t e) {
        std::memcpy(out + b, src + b, static_cast<size_t>(e - b) * sizeof(float));
      });
    }
  });
  bench::set_byte_counters(state, 2.0 * T * kP * sizeof(float), seconds);
  benchmark::DoNotOptimize(dst);
}

// One fused pass forming only the T×T Gram matrix of the T gradients.
void bench_gram_pass(benchmark::State& state, int T) {
  surgery::Gram G;
  surgery::FusedPass pass;
  for (const GradVector* g : task_ptrs(T)) pass.vectors.push_back(g->data());
  pass.gram = &G;
  const double seconds = bench::time_loop(state, [&] { surgery::run_fused_pass(kP, pass); });
  bench::set_byte_counters(state, static_cast<double>(T) * kP * sizeof(float), seconds);
  benchmark::DoNotOptimize(G.data());
}

void register_all() {
  for (int T : {2, 3, 10}) {
    const std::string tail = "/tasks:" + std::to_string(T);
    benchmark::RegisterBenchmark(("aggregate/raw_memcpy" + tail).c_str(),
                                 [T](benchmark::State& s) { bench_memcpy(s, T); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("aggregate/raw_gram_pass" + tail).c_str(),
                                 [T](benchmark::State& s) { bench_gram_pass(s, T); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    for (const std::string& m : surgery::multi_task_surgeon_names()) {
      benchmark::RegisterBenchmark(("aggregate/" + m + tail).c_str(),
                                   [m, T](benchmark::State& s) { bench_method(s, m, T, true); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    for (const std::string m : {"graddrop", "moco"}) {
      benchmark::RegisterBenchmark(("aggregate/" + m + "_nodiag" + tail).c_str(),
                                   [m, T](benchmark::State& s) { bench_method(s, m, T, false); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace
}  // namespace scalpel

// SCALPEL_BENCH_MAIN's body, after registering the benchmarks by method name (the registry is
// complete only once main() runs, so this cannot be done by static BENCHMARK objects).
int main(int argc, char** argv) {
  scalpel::register_all();
  return scalpel::bench::run_main(argc, argv);
}
