// Core benchmarks: matrix products through the Tensor API against raw cblas_sgemm, linear
// forward+backward, the own GEMM kernel against OpenBLAS, large elementwise ops, softmax/log_softmax and reductions.
//
// Names follow "<family>/<op>/<shape>/<impl>":
//   .../raw     the reference alone: cblas_sgemm (or a plain parallel loop for elementwise ops)
//               writing into a preallocated buffer;
//   .../tensor  the Scalpel API (which allocates its output on every call), timed INTERLEAVED with
//               the same raw reference (bench::time_paired), so its "vs_raw" counter (raw time /
//               tensor time) stays meaningful while other processes load the machine. Its
//               GFLOP/s or GB/s counts the tensor calls only.
// Every GEMM figure also carries frac_of_sgemm_peak (the raw square sgemm peak measured at start-up
// in the same process, 2048^3 unless SCALPEL_PEAK_N says otherwise); memory-bound ones carry GB/s of
// logical traffic and frac_of_copy_bw (against a parallel memcpy measured the same way).
//
// How the backward products are timed through the Tensor API: the graph c = matmul(a, b) (a and b
// requiring grad) is built once, outside the timed loop; each iteration calls
//   grad({c}, {a}, GradOptions().set_retain_graph(true).set_seeds({dc}))   // dA = dC·Bᵀ only
//   grad({c}, {b}, ...)                                                    // dB = Aᵀ·dC only
// so exactly one sgemm runs per iteration, plus the engine's bookkeeping and the allocation of the
// fresh gradient buffer. No forward is timed and nothing is subtracted. The raw counterparts call
// cblas_sgemm with the same transposition flags (NoTrans/Trans and Trans/NoTrans). linear_fwdbwd
// times linear(x, W, b) plus grad() for x, W and b against three raw sgemms; the bias work (a row
// copy and column sums) has no raw counterpart, so it is charged to the Tensor API.
#include <cblas.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench_common.h"
#include "core/kernels/gemm.h"
#include "core/kernels/loops.h"
#include "core/ops.h"

namespace scalpel {
namespace {

using benchmark::State;

// Inputs are generated once per process (uniform in [-1, 1), fixed seeds) and shared by every
// benchmark and repetition that asks for the same shape and seed. Benchmarks that need a leaf
// requiring grad take a detach()ed handle, which shares the data but not the autograd flag.
Tensor input(const Shape& shape, uint64_t seed) {
  static std::map<std::pair<Shape, uint64_t>, Tensor> cache;
  auto key = std::make_pair(shape, seed);
  auto it = cache.find(key);
  if (it == cache.end()) {
    Generator gen(seed);
    it = cache.emplace(key, Tensor::uniform(shape, gen, -1.0f, 1.0f)).first;
  }
  return it->second;
}

void report(State& state, double work, double seconds, bool flops) {
  if (flops) {
    bench::set_flop_counters(state, work, seconds);
  } else {
    bench::set_byte_counters(state, work, seconds);
  }
}

void report_paired(State& state, double work, const bench::PairedTimes& t, bool flops) {
  report(state, work, t.candidate, flops);
  state.counters["vs_raw"] = t.ratio();
  state.counters[flops ? "raw_GFLOP/s" : "raw_GB/s"] = work * 1e-9 / t.reference;
}

// ---- matrix products ----------------------------------------------------------------------------

struct GemmShape {
  int64_t m, k, n;  // a [m, k] · b [k, n] -> c [m, n]
  std::string str() const { return std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n); }
  double flops() const { return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n); }
};

enum class GemmOp { Fwd, BwdA, BwdB };
const char* op_name(GemmOp op) { return op == GemmOp::Fwd ? "fwd" : op == GemmOp::BwdA ? "bwd_dA" : "bwd_dB"; }

// The raw product for `op`, row-major, into a buffer it owns (beta = 0):
//   fwd    c [m, n]  = a [m, k] · b [k, n]
//   bwd_dA da [m, k] = dc [m, n] · bᵀ      (b stored [k, n])
//   bwd_dB db [k, n] = aᵀ · dc [m, n]      (a stored [m, k])
std::function<void()> raw_gemm(GemmShape s, GemmOp op) {
  const int m = static_cast<int>(s.m), k = static_cast<int>(s.k), n = static_cast<int>(s.n);
  const float* pa = input({s.m, s.k}, 1).data();
  const float* pb = input({s.k, s.n}, 2).data();
  const float* pdc = input({s.m, s.n}, 3).data();
  Tensor out = Tensor::zeros(op == GemmOp::Fwd    ? Shape{s.m, s.n}
                             : op == GemmOp::BwdA ? Shape{s.m, s.k}
                                                  : Shape{s.k, s.n});
  return [=]() mutable {
    float* po = out.data();
    switch (op) {
      case GemmOp::Fwd:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, pa, k, pb, n, 0.0f, po, n);
        break;
      case GemmOp::BwdA:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, 1.0f, pdc, n, pb, n, 0.0f, po, k);
        break;
      case GemmOp::BwdB:
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, m, 1.0f, pa, k, pdc, n, 0.0f, po, n);
        break;
    }
    benchmark::ClobberMemory();
  };
}

void bm_gemm_raw(State& state, GemmShape s, GemmOp op) {
  report(state, s.flops(), bench::time_loop(state, raw_gemm(s, op)), true);
}

// The same products through scalpel::matmul and autograd (see the file comment).
void bm_gemm_tensor(State& state, GemmShape s, GemmOp op) {
  Tensor a = input({s.m, s.k}, 1).detach(), b = input({s.k, s.n}, 2).detach();
  const Tensor dc = input({s.m, s.n}, 3);
  std::function<void()> tensor_call;
  Tensor c;
  if (op == GemmOp::Fwd) {
    tensor_call = [&] {
      Tensor out = matmul(a, b);
      benchmark::DoNotOptimize(out.data());
    };
  } else {
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    c = matmul(a, b);
    const Tensor wrt = op == GemmOp::BwdA ? a : b;
    const GradOptions opts = GradOptions().set_retain_graph(true).set_seeds({dc});
    tensor_call = [&c, wrt, opts] {
      std::vector<Tensor> g = grad({c}, {wrt}, opts);
      benchmark::DoNotOptimize(g[0].data());
    };
  }
  report_paired(state, s.flops(), bench::time_paired(state, raw_gemm(s, op), tensor_call), true);
}

// The own GEMM kernel (core/kernels/gemm.h) against cblas_sgemm on the same operands, interleaved:
// "gemm/<layout>/<shape>/raw" is OpenBLAS, ".../tensor" the own AVX-512 path, so vs_raw is the
// own kernel's speed-up. Layouts: nn = A [m, k] B [k, n]; nt = B stored [n, k]; tn = A stored [k, m].
void bm_gemm_own(State& state, GemmShape s, bool ta, bool tb, bool own) {
  const Tensor a = input({s.m, s.k}, 11), b = input({s.k, s.n}, 12);
  Tensor c = Tensor::zeros({s.m, s.n});
  const int64_t lda = ta ? s.m : s.k, ldb = tb ? s.k : s.n;
  auto call = [&](kernels::GemmPath path) {
    return [&, path] {
      kernels::sgemm_on(path, ta, tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
      benchmark::ClobberMemory();
    };
  };
  if (!own) {
    report(state, s.flops(), bench::time_loop(state, call(kernels::GemmPath::kBlas)), true);
    return;
  }
  report_paired(state, s.flops(),
                bench::time_paired(state, call(kernels::GemmPath::kBlas), call(kernels::GemmPath::kAvx512)), true);
}

// linear on the MLP shapes: x [m, k], W [n, k], bias [n] -> y [m, n]; forward, dX, dW (and db).
std::function<void()> raw_linear(GemmShape s) {
  const int m = static_cast<int>(s.m), k = static_cast<int>(s.k), n = static_cast<int>(s.n);
  const float* px = input({s.m, s.k}, 1).data();
  const float* pw = input({s.n, s.k}, 2).data();
  const float* pdy = input({s.m, s.n}, 3).data();
  Tensor y = Tensor::zeros({s.m, s.n}), dx = Tensor::zeros({s.m, s.k}), dw = Tensor::zeros({s.n, s.k});
  return [=]() mutable {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, px, k, pw, k, 0.0f, y.data(), n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, pdy, n, pw, k, 0.0f, dx.data(), k);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, pdy, n, px, k, 0.0f, dw.data(), k);
    benchmark::ClobberMemory();
  };
}

void bm_linear_raw(State& state, GemmShape s) {
  report(state, 3 * s.flops(), bench::time_loop(state, raw_linear(s)), true);
}

void bm_linear_tensor(State& state, GemmShape s) {
  Tensor x = input({s.m, s.k}, 1).detach(), w = input({s.n, s.k}, 2).detach(), bias = input({s.n}, 4).detach();
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  bias.set_requires_grad(true);
  const GradOptions opts = GradOptions().set_seeds({input({s.m, s.n}, 3)});
  auto tensor_call = [&] {
    Tensor y = linear(x, w, bias);
    std::vector<Tensor> g = grad({y}, {x, w, bias}, opts);
    benchmark::DoNotOptimize(g[1].data());
  };
  report_paired(state, 3 * s.flops(), bench::time_paired(state, raw_linear(s), tensor_call), true);
}

// ---- memory-bound ops ---------------------------------------------------------------------------

constexpr int64_t kRows = 4096, kCols = 4096;  // 16M floats, 64 MiB per tensor

template <class F>
void raw_map2(const float* a, const float* b, float* out, int64_t n, F f) {
  parallel_for(n, kernels::kGrain, [=](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = f(a[i], b[i]);
  });
}

// Bytes touched per call: each input read once, the output written once.
double elementwise_bytes(const std::string& op) {
  return (op == "add" || op == "mul" ? 12.0 : 8.0) * static_cast<double>(kRows * kCols);
}

// The op as a plain parallel loop into a preallocated buffer; same arithmetic as core's kernels.
std::function<void()> raw_elementwise(const std::string& op) {
  const float* pa = input({kRows, kCols}, 1).data();
  const float* pb = input({kRows, kCols}, 2).data();
  const float* pr = input({kCols}, 3).data();
  Tensor out = Tensor::zeros({kRows, kCols});
  float* po = out.data();
  const int64_t n = kRows * kCols;
  std::function<void()> body;
  if (op == "add") {
    body = [=] { raw_map2(pa, pb, po, n, [](float x, float y) { return x + y; }); };
  } else if (op == "mul") {
    body = [=] { raw_map2(pa, pb, po, n, [](float x, float y) { return x * y; }); };
  } else if (op == "relu") {
    body = [=] { raw_map2(pa, pa, po, n, [](float x, float) { return x > 0.0f ? x : 0.0f; }); };
  } else if (op == "gelu") {
    body = [=] {
      raw_map2(pa, pa, po, n, [](float x, float) { return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f)); });
    };
  } else {  // add_bcast: [rows, cols] + [cols]
    body = [=] {
      parallel_for(kRows, 8, [=](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t j = 0; j < kCols; ++j) po[r * kCols + j] = pa[r * kCols + j] + pr[j];
      });
    };
  }
  return [out, body] {
    body();
    benchmark::ClobberMemory();
  };
}

void bm_elementwise_raw(State& state, const std::string& op) {
  report(state, elementwise_bytes(op), bench::time_loop(state, raw_elementwise(op)), false);
}

void bm_elementwise_tensor(State& state, const std::string& op) {
  const Tensor a = input({kRows, kCols}, 1), b = input({kRows, kCols}, 2), row = input({kCols}, 3);
  std::function<Tensor()> f;
  if (op == "add") {
    f = [&] { return add(a, b); };
  } else if (op == "mul") {
    f = [&] { return mul(a, b); };
  } else if (op == "relu") {
    f = [&] { return relu(a); };
  } else if (op == "gelu") {
    f = [&] { return gelu(a); };
  } else {
    f = [&] { return add(a, row); };
  }
  auto tensor_call = [&] {
    Tensor out = f();
    benchmark::DoNotOptimize(out.data());
  };
  report_paired(state, elementwise_bytes(op), bench::time_paired(state, raw_elementwise(op), tensor_call), false);
}

// softmax / log_softmax along the last dim of x [4096, 1024] (16 MiB, L3-sized on many CPUs).
// fwd: read x, write y (8 B/elem). bwd: grad() on a retained graph: read dy and the saved y,
// write dx (12 B/elem).
void bm_softmax(State& state, bool log, bool backward) {
  const int64_t rows = 4096, cols = 1024;
  Tensor x = input({rows, cols}, 5).detach();
  double secs = 0;
  if (!backward) {
    secs = bench::time_loop(state, [&] {
      Tensor y = log ? log_softmax(x, -1) : softmax(x, -1);
      benchmark::DoNotOptimize(y.data());
    });
  } else {
    x.set_requires_grad(true);
    Tensor y = log ? log_softmax(x, -1) : softmax(x, -1);
    const GradOptions opts = GradOptions().set_retain_graph(true).set_seeds({input({rows, cols}, 6)});
    secs = bench::time_loop(state, [&] {
      std::vector<Tensor> g = grad({y}, {x}, opts);
      benchmark::DoNotOptimize(g[0].data());
    });
  }
  report(state, (backward ? 12.0 : 8.0) * rows * cols, secs, false);
}

// Reductions of x [4096, 4096]: every element read once (4 B/elem).
void bm_reduce(State& state, const std::string& op) {
  const Tensor x = input({kRows, kCols}, 7);
  const double secs = bench::time_loop(state, [&] {
    Tensor r = op == "sum" ? sum(x) : op == "mean" ? mean(x) : op == "sum_dim0" ? sum(x, {0}) : sum(x, {1});
    benchmark::DoNotOptimize(r.data());
  });
  report(state, 4.0 * kRows * kCols, secs, false);
}

// ---- registration -------------------------------------------------------------------------------

template <class F>
void add_raw(const std::string& name, F f) {
  benchmark::RegisterBenchmark(name.c_str(), f)->UseRealTime()->Unit(benchmark::kMillisecond);
}
template <class F>
void add_paired(const std::string& name, F f) {
  benchmark::RegisterBenchmark(name.c_str(), f)->UseManualTime()->Unit(benchmark::kMillisecond);
}

const bool registered = [] {
  const std::vector<GemmShape> shapes = {{256, 256, 256},    {512, 512, 512}, {1024, 1024, 1024},
                                         {2048, 2048, 2048}, {256, 784, 256}, {256, 1024, 1024}};
  for (GemmOp op : {GemmOp::Fwd, GemmOp::BwdA, GemmOp::BwdB}) {
    for (const GemmShape& s : shapes) {
      const std::string key = std::string("matmul/") + op_name(op) + "/" + s.str();
      add_raw(key + "/raw", [=](State& st) { bm_gemm_raw(st, s, op); });
      add_paired(key + "/tensor", [=](State& st) { bm_gemm_tensor(st, s, op); });
    }
  }
  if (kernels::gemm_path_supported(kernels::GemmPath::kAvx512)) {
    // Square, the ResNet-18 width-64 convolution products (im2col forward 64@32x32, pixel-major rows
    // 512@4x4 forward / dW / dX) and attention-sized products below kAuto's threshold.
    struct OwnCase {
      const char* layout;
      GemmShape s;
    };
    const std::vector<OwnCase> own = {{"nn", {512, 512, 512}},   {"nn", {1024, 1024, 1024}}, {"nn", {2048, 2048, 2048}},
                                      {"nn", {64, 576, 1024}},   {"nt", {1024, 4608, 512}},  {"tn", {512, 1024, 4608}},
                                      {"nn", {1024, 512, 4608}}, {"nt", {128, 32, 128}},     {"nn", {128, 128, 32}}};
    for (const OwnCase& oc : own) {
      const std::string layout = oc.layout;
      const bool ta = layout[0] == 't', tb = layout[1] == 't';
      const GemmShape s = oc.s;
      const std::string key = "gemm/" + layout + "/" + s.str();
      add_raw(key + "/raw", [=](State& st) { bm_gemm_own(st, s, ta, tb, false); });
      add_paired(key + "/tensor", [=](State& st) { bm_gemm_own(st, s, ta, tb, true); });
    }
  }
  for (const GemmShape& s : {GemmShape{256, 784, 256}, GemmShape{256, 1024, 1024}}) {
    const std::string key = "linear/fwdbwd/" + s.str();
    add_raw(key + "/raw", [=](State& st) { bm_linear_raw(st, s); });
    add_paired(key + "/tensor", [=](State& st) { bm_linear_tensor(st, s); });
  }
  for (const std::string op : {"add", "mul", "relu", "gelu", "add_bcast"}) {
    const std::string key = "elementwise/" + op + "/4096x4096";
    add_raw(key + "/raw", [=](State& st) { bm_elementwise_raw(st, op); });
    add_paired(key + "/tensor", [=](State& st) { bm_elementwise_tensor(st, op); });
  }
  for (bool log : {false, true}) {
    for (bool bwd : {false, true}) {
      add_raw(std::string(log ? "log_softmax" : "softmax") + (bwd ? "/bwd" : "/fwd") + "/4096x1024/tensor",
              [=](State& st) { bm_softmax(st, log, bwd); });
    }
  }
  for (const std::string op : {"sum", "mean", "sum_dim0", "sum_dim1"}) {
    add_raw("reduce/" + op + "/4096x4096/tensor", [=](State& st) { bm_reduce(st, op); });
  }
  return true;
}();

}  // namespace
}  // namespace scalpel

SCALPEL_BENCH_MAIN();
