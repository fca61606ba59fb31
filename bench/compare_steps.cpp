// compare_steps: Scalpel and PyTorch side by side on the reference training steps (issue 14).
//
//   build/bench/compare_steps [--cases a,b,..] [--rounds 3] [--reps 5] [--threads N] [--python P]
//   make bench-compare        (the same, through scripts/compare-pytorch.sh)
//
// Every (case, side, round) runs in a fresh worker process: this binary with --worker CASE for
// Scalpel, `python3 bench/compare_pytorch.py CASE` for PyTorch (the same architectures, shapes,
// losses and optimizers; the models are the golden script's, tests/golden/gen_torch_nn.py). Rounds
// alternate which side goes first, so load from other processes hits both alike. A worker builds
// the model, runs untimed steps for at least 1 s and at least two (2026-12-07, 2 threads: Scalpel's
// first ~150 ms of 3-4 ms smooth-MLP steps ran 2-5x slower and erratic before settling, PyTorch's
// first steps were slower too), times `reps` steps one by one and prints one JSON line: the step
// times, its peak RSS net of the runtime (VmHWM minus VmRSS after the runtime's own
// initialisation, before the model exists), its thread count and the BLAS library it mapped.
//
// The table: median ms per step of each side over all rounds, the ratio Scalpel/PyTorch, the
// analytic GEMM work per step (bench_flops.h) as a fraction of the machine's FMA peak and of the
// cblas_sgemm peak, both measured in this run, and the net peak RSS of each side. No ratio is
// printed when the two sides ran different thread counts or mapped different BLAS libraries. The
// header also gives the load average before the run and the OpenMP wait policy, which move the
// 2-thread rows most on a shared machine (docs/performance-notes.md, Finding 10).
// Without torch (python3 -c "import torch" fails) it prints Scalpel's side and how to get the other.
//
// Cases ("<model>/<phase>": fwdbwd = forward, loss, zero_grad, backward; step = the full training
// step with the optimizer, and for the two-head ResNet the per-loss gradients and the surgery):
//   mlp1024       MLP 784-1024-1024-10 (ReLU), batch 256, Adam
//   resnet18_w16  ResNet-18 CIFAR stem, width 16, batch 32, 32x32, SGD momentum 0.9
//   resnet18_w64  the same at width 64; resnet18_w64_b128 at batch 128
//   bytelm_l4     ByteLM 4 layers, d 256, 8 heads, d_ff 1024, T 128, batch 16, Adam; bytelm_l12: 12 layers
//   twohead_w16_mixed, twohead_w16_bloop (step only): ResNet-18 width 16 with two 10-class heads,
//                 d = g0 + g1 (mixed) or g0 + π(g1; EMA of g0, ρ 0.01) (bloop), SGD momentum 0.9
//   twohead_w16_fused: Mixed with fused_mixed (one backward sweep of L0 + L1, no per-loss gradients)
//   twohead_w16_floor, smooth_mlp_floor: the surgeons' floor (the table's last lines give each
//                 surgeon's step over it): the same forward, one plain backward per loss accumulated
//                 into .grad (λ folded into the second), the optimizer; no per-loss copies, no surgery.
//                 What a plain loop does, not a strict lower bound: TrainStep's preallocated
//                 per-loss buffers measured no slower than accumulating into .grad (2026-12-08)
//   smooth_mlp_mixed, smooth_mlp_bloop (step only): the smooth-MLP study's step, MLP 784-256-128-10
//                 (ReLU) batch 256, cross-entropy and the log Lipschitz bound Σ log σ_max(W_l) (one
//                 power iteration per step), d = g0 + 0.1 g1 or g0 + 0.1 π(g1; ĝ0), Adam 3e-4
#include <cblas.h>
#include <immintrin.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.h"
#include "bench_flops.h"
#include "core/kernels/gemm.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "nn/byte_lm.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/resnet.h"
#include "optim/optimizer.h"
#include "optim/surgery/surgeon.h"
#include "optim/train_step.h"

using namespace scalpel;

namespace {

// ---- process facts ------------------------------------------------------------------------------

// Page faults of this process so far (fresh pages touched: an allocation the step did not reuse).
int64_t minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_minflt);
}

int64_t status_kb(const std::string& key) {  // VmRSS / VmHWM from /proc/self/status
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1);
  }
  return -1;
}

std::string mapped_blas() {  // the OpenBLAS library this process mapped, resolved
  std::ifstream in("/proc/self/maps");
  for (std::string line; std::getline(in, line);) {
    const size_t p = line.find('/');
    if (p == std::string::npos || line.find("openblas", p) == std::string::npos) continue;
    char buf[4096];
    const std::string path = line.substr(p);
    if (realpath(path.c_str(), buf)) return buf;
    return path;
  }
  return "none";
}

// ---- the Scalpel side of each case ------------------------------------------------------------------

struct Work {
  std::function<void()> step;  // one timed iteration
  double gemm_flops = 0;       // analytic GEMM FLOPs of one iteration
};

IndexTensor random_labels(int64_t n, int64_t classes, Generator& gen) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& l : v) l = gen.randint(classes);
  return IndexTensor(v);
}

// Holds whatever a case builds, alive while it runs.
struct Holder {
  std::vector<std::shared_ptr<void>> keep;
  template <class T>
  T& add(std::shared_ptr<T> p) {
    keep.push_back(p);
    return *p;
  }
};

Work make_case(const std::string& name, Holder& h) {
  const size_t slash = name.find('/');
  const std::string model = name.substr(0, slash), phase = slash == std::string::npos ? "" : name.substr(slash + 1);
  if (phase != "fwdbwd" && phase != "step")
    throw std::invalid_argument("case '" + name + "': phase must be fwdbwd or step");
  const bool full = phase == "step";
  // The surgery cases are "<family>_<variant>": twohead_w16_bloop, smooth_mlp_floor, ...
  const size_t us = model.rfind('_');
  const std::string family = model.substr(0, us), variant = us == std::string::npos ? "" : model.substr(us + 1);
  auto variant_in = [&variant](std::initializer_list<const char*> vs) {
    return std::any_of(vs.begin(), vs.end(), [&variant](const char* v) { return variant == v; });
  };
  auto gen = std::make_shared<Generator>(1);
  h.keep.push_back(gen);
  Work w;
  // A training step from a loss and parameters: zero_grad + backward (+ optimizer step).
  auto plain = [&h, full](nn::Module& m, std::function<Tensor()> loss, std::unique_ptr<optim::Optimizer> opt) {
    auto o = std::shared_ptr<optim::Optimizer>(std::move(opt));
    h.keep.push_back(o);
    return [&m, loss, o, full] {
      m.zero_grad();
      loss().backward();
      if (full) o->step();
    };
  };
  if (model == "mlp1024") {
    const std::vector<int64_t> widths{784, 1024, 1024, 10};
    auto& mlp = h.add(std::make_shared<nn::MLP>(nn::MLPOptions(widths).activation("relu"), *gen));
    auto x = std::make_shared<Tensor>(Tensor::uniform({256, 784}, *gen));
    auto y = std::make_shared<IndexTensor>(random_labels(256, 10, *gen));
    h.keep.push_back(x), h.keep.push_back(y);
    w.step = plain(
        mlp, [&mlp, x, y] { return cross_entropy(mlp.forward(*x), *y); },
        std::make_unique<optim::Adam>(mlp.parameters(), optim::AdamOptions(1e-3)));
    const bench::Flops f = bench::mlp_flops(widths, 256);
    w.gemm_flops = f.fwd + f.bwd;
  } else if (model == "resnet18_w16" || model == "resnet18_w64" || model == "resnet18_w64_b128") {
    const int64_t width = model == "resnet18_w16" ? 16 : 64, batch = model == "resnet18_w64_b128" ? 128 : 32;
    auto& net = h.add(std::make_shared<nn::ResNet18>(nn::ResNetOptions().width(width).heads({10}), *gen));
    net.train();
    auto x = std::make_shared<Tensor>(Tensor::normal({batch, 3, 32, 32}, *gen));
    auto y = std::make_shared<IndexTensor>(random_labels(batch, 10, *gen));
    h.keep.push_back(x), h.keep.push_back(y);
    w.step = plain(
        net, [&net, x, y] { return cross_entropy(net.forward(*x)[0], *y); },
        std::make_unique<optim::SGD>(net.parameters(), optim::SGDOptions(0.05).momentum(0.9)));
    const bench::Flops f = bench::resnet_flops(width, batch, 32, 10);
    w.gemm_flops = f.fwd + f.bwd;
  } else if (model == "bytelm_l4" || model == "bytelm_l12") {
    const int64_t batch = 16, t = 128, layers = model == "bytelm_l4" ? 4 : 12;
    auto& lm = h.add(std::make_shared<nn::ByteLM>(
        nn::ByteLMOptions().layers(layers).heads(8).d_model(256).d_ff(1024).max_len(t).vocab(256), *gen));
    std::vector<int64_t> in, out;
    for (int64_t i = 0; i < batch * t; ++i) in.push_back(gen->randint(256)), out.push_back(gen->randint(256));
    auto tokens = std::make_shared<IndexTensor>(in, Shape{batch, t});
    auto targets = std::make_shared<IndexTensor>(out, Shape{batch, t});
    h.keep.push_back(tokens), h.keep.push_back(targets);
    w.step = plain(
        lm, [&lm, tokens, targets] { return lm.loss(*tokens, *targets); },
        std::make_unique<optim::Adam>(lm.parameters(), optim::AdamOptions(1e-3)));
    const bench::Flops f = bench::byte_lm_flops(layers, 256, 8, 1024, 256, batch, t);
    w.gemm_flops = f.fwd + f.bwd;
  } else if (family == "twohead_w16" && full && variant_in({"fused", "floor", "mixed", "bloop"})) {
    auto& net = h.add(std::make_shared<nn::ResNet18>(nn::ResNetOptions().width(16).heads({10, 10}), *gen));
    net.train();
    auto x = std::make_shared<Tensor>(Tensor::normal({32, 3, 32, 32}, *gen));
    auto y0 = std::make_shared<IndexTensor>(random_labels(32, 10, *gen));
    auto y1 = std::make_shared<IndexTensor>(random_labels(32, 10, *gen));
    h.keep.push_back(x), h.keep.push_back(y0), h.keep.push_back(y1);
    if (variant == "floor") {
      // The floor of both surgeons' steps: the same forward, one backward sweep per loss (the
      // first keeps the graph, the second accumulates into .grad), the optimizer; no surgery.
      auto opt = std::make_shared<optim::SGD>(net.parameters(), optim::SGDOptions(0.05).momentum(0.9));
      h.keep.push_back(opt);
      w.step = [&net, opt, x, y0, y1] {
        net.zero_grad();
        const std::vector<Tensor> logits = net.forward(*x);
        cross_entropy(logits[0], *y0).backward(Tensor(), /*retain_graph=*/true);
        cross_entropy(logits[1], *y1).backward();
        opt->step();
      };
    } else {
      const std::string method = variant == "bloop" ? "bloop" : "mixed";
      auto ts = std::make_shared<optim::TrainStep>(
          std::make_unique<optim::SGD>(net.parameters(), optim::SGDOptions(0.05).momentum(0.9)),
          surgery::make_surgeon(method, surgery::SurgeonOptions().lambda(1.0).rho(0.01)),
          optim::TrainStepOptions().fused_mixed(variant == "fused"));
      h.keep.push_back(ts);
      w.step = [&net, ts, x, y0, y1] {
        const std::vector<Tensor> logits = net.forward(*x);
        ts->step({cross_entropy(logits[0], *y0), cross_entropy(logits[1], *y1)});
      };
    }
    // Two backward passes through the trunk (one per loss), the heads counted twice; fused: one.
    const bench::Flops f = bench::resnet_flops(16, 32, 32, 10);
    w.gemm_flops = f.fwd + (variant == "fused" ? 1 : 2) * f.bwd;
  } else if (family == "smooth_mlp" && full && variant_in({"floor", "mixed", "bloop"})) {
    const std::vector<int64_t> widths{784, 256, 128, 10};
    auto& mlp = h.add(std::make_shared<nn::MLP>(nn::MLPOptions(widths).activation("relu"), *gen));
    auto& bound = h.add(
        std::make_shared<nn::LipschitzBound>(mlp, nn::LipschitzOptions().iterations(1).init_iterations(50), *gen));
    auto x = std::make_shared<Tensor>(Tensor::uniform({256, 784}, *gen));
    auto y = std::make_shared<IndexTensor>(random_labels(256, 10, *gen));
    h.keep.push_back(x), h.keep.push_back(y);
    if (variant == "floor") {  // one backward per loss, accumulated, then Adam
      auto opt = std::make_shared<optim::Adam>(mlp.parameters(), optim::AdamOptions(3e-4));
      h.keep.push_back(opt);
      w.step = [&mlp, &bound, opt, x, y] {
        mlp.zero_grad();
        cross_entropy(mlp.forward(*x), *y).backward();
        mul(bound.forward(), 0.1f).backward();
        opt->step();
      };
    } else {
      auto ts = std::make_shared<optim::TrainStep>(
          std::make_unique<optim::Adam>(mlp.parameters(), optim::AdamOptions(3e-4)),
          surgery::make_surgeon(variant, surgery::SurgeonOptions().lambda(0.1).rho(0.01)));
      h.keep.push_back(ts);
      w.step = [&mlp, &bound, ts, x, y] { ts->step({cross_entropy(mlp.forward(*x), *y), bound.forward()}); };
    }
    // One backward through the MLP (the bound's gradients are outer products, no GEMM).
    const bench::Flops f = bench::mlp_flops(widths, 256);
    w.gemm_flops = f.fwd + f.bwd;
  } else {
    throw std::invalid_argument("unknown case '" + name + "'");
  }
  return w;
}

int run_worker(const std::string& name, int reps) {
  {  // let OpenBLAS and OpenMP set themselves up before the baseline RSS
    std::vector<float> a(64 * 64, 1.0f), c(64 * 64);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 64, 64, 64, 1.0f, a.data(), 64, a.data(), 64, 0.0f, c.data(),
                64);
  }
  const int64_t base_kb = status_kb("VmRSS");
  Holder h;
  const Work w = make_case(name, h);
  const auto warm0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 2 || std::chrono::steady_clock::now() - warm0 < std::chrono::seconds(1); ++i) w.step();
  nlohmann::json ms = nlohmann::json::array();
  const int64_t faults0 = minor_faults();
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    w.step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  nlohmann::json j{{"side", "scalpel"},
                   {"case", name},
                   {"ms", ms},
                   {"rss_net_mb", (status_kb("VmHWM") - base_kb) / 1024.0},
                   {"faults_per_step", static_cast<double>(minor_faults() - faults0) / reps},
                   {"threads", num_threads()},
                   {"blas", mapped_blas()},
                   {"kernels", std::string("OpenBLAS ") + openblas_get_corename() + "; " + kernels::gemm_summary() +
                                   "; Scalpel's own direct conv kernels"},
                   {"gemm_gflop", w.gemm_flops * 1e-9}};
  std::cout << j.dump() << std::endl;
  return 0;
}

// ---- the driver --------------------------------------------------------------------------------

// Runs `cmd`, returns the last line of its stdout that parses as a JSON object (null on failure).
nlohmann::json run_json(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return nullptr;
  std::istringstream in(out);
  nlohmann::json last = nullptr;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    try {
      last = nlohmann::json::parse(line);
    } catch (const std::exception&) {
    }
  }
  return last;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// FMA peak of the machine at `threads` threads: 12 independent chains of vector FMAs (512-bit when
// the build has AVX-512, else 256-bit), enough to cover the FMA latency on every unit; best of 3
// timings, GFLOP/s (one FMA = 2 FLOPs per lane).
double measure_fma_peak(int threads) {
#if defined(__AVX512F__)
  using V = __m512;
  constexpr int kLanes = 16;
  auto fma = [](V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); };
  auto set1 = [](float x) { return _mm512_set1_ps(x); };
  auto store = [](float* t, V v) { _mm512_store_ps(t, v); };
#else
  using V = __m256;
  constexpr int kLanes = 8;
  auto fma = [](V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); };
  auto set1 = [](float x) { return _mm256_set1_ps(x); };
  auto store = [](float* t, V v) { _mm256_store_ps(t, v); };
#endif
  // Through memory: GCC 12's _mm512_reduce_add_ps warns -Wuninitialized.
  auto hsum = [&store](V v) {
    alignas(64) float t[kLanes];
    store(t, v);
    double s = 0;
    for (float x : t) s += x;
    return s;
  };
  constexpr int kChains = 12;
  const int64_t iters = 20000000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    double sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      V acc[kChains];
      for (int i = 0; i < kChains; ++i) acc[i] = set1(1.0f + 1e-7f * static_cast<float>(i));
      const V a = set1(0.999999f), b = set1(1e-7f);
      for (int64_t it = 0; it < iters; ++it) {
        for (int i = 0; i < kChains; ++i) acc[i] = fma(acc[i], a, b);
      }
      for (int i = 0; i < kChains; ++i) sink += hsum(acc[i]);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (sink == 42.0) std::printf(" ");  // the result is used
    best = std::max(best, 2.0 * kLanes * kChains * static_cast<double>(iters) * threads / s * 1e-9);
  }
  return best;
}

std::string fmt(double v, const char* f = "%.3g") {
  if (!std::isfinite(v)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

const std::vector<std::string> kAllCases = {
    "mlp1024/fwdbwd",         "mlp1024/step",           "resnet18_w16/fwdbwd",    "resnet18_w16/step",
    "resnet18_w64/fwdbwd",    "resnet18_w64/step",      "resnet18_w64_b128/step", "bytelm_l4/fwdbwd",
    "bytelm_l4/step",         "bytelm_l12/step",        "twohead_w16_fused/step", "twohead_w16_floor/step",
    "twohead_w16_mixed/step", "twohead_w16_bloop/step", "smooth_mlp_floor/step",  "smooth_mlp_mixed/step",
    "smooth_mlp_bloop/step"};

int run_driver(std::vector<std::string> cases, int rounds, int reps, int threads, const std::string& python,
               const std::string& self, const std::string& script) {
  double load1 = NAN;  // read first: the peak probes below load the CPUs themselves
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load1) != 1) load1 = NAN;
    std::fclose(f);
  }
  const bool torch = std::system((python + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  set_num_threads(threads);
  double sgemm_best = 0, sgemm_median = 0;
  bench::detail::measure_sgemm(2048, 5, sgemm_best, sgemm_median);
  const double fma = measure_fma_peak(threads);
  std::printf("compare_steps: %d thread(s), %s; FMA peak %.0f GFLOP/s, sgemm 2048^3 median %.0f GFLOP/s (this run)\n",
              threads, threading_summary().c_str(), fma, sgemm_median);
  std::printf("  %s\n", bench::detail::cpu_model().c_str());
  // Other load and the wait policy move 2-thread rows most (docs/performance-notes.md, Finding 10).
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  std::printf("  load average (1 min) before the run %s on %ld CPUs; OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s\n",
              fmt(load1, "%.2f").c_str(), sysconf(_SC_NPROCESSORS_ONLN), policy ? policy : "(unset)",
              spin ? spin : "(unset)");
  if (!torch) {
    std::printf(
        "  PyTorch: '%s -c \"import torch\"' failed: showing Scalpel's side only. For the other side: "
        "apt-get install python3-torch (Debian's 1.13), then run this again.\n",
        python.c_str());
  }
  const std::string env = "OMP_NUM_THREADS=" + std::to_string(threads) + " ";
  std::printf(
      "\n| step | Scalpel ms | PyTorch ms | ratio | GEMM GFLOP | frac FMA peak | frac sgemm peak | RSS MB "
      "Scalpel / PyTorch | page faults per step (Scalpel) |\n|---|---|---|---|---|---|---|---|---|\n");
  std::string kernels_scalpel, kernels_torch;
  std::map<std::string, std::pair<double, double>> medians;  // case -> (Scalpel, PyTorch) ms
  for (const std::string& c : cases) {
    std::vector<double> ms_s, ms_t;
    nlohmann::json last_s, last_t;
    for (int r = 0; r < rounds; ++r) {
      for (int side = 0; side < 2; ++side) {
        const bool scalpel_side = ((side + r) % 2 == 0);
        if (!scalpel_side && !torch) continue;
        const std::string cmd = scalpel_side
                                    ? env + "'" + self + "' --worker '" + c + "' --reps " + std::to_string(reps)
                                    : env + python + " '" + script + "' '" + c + "' --reps " + std::to_string(reps) +
                                          " --threads " + std::to_string(threads);
        const nlohmann::json j = run_json(cmd);
        if (j.is_null()) {
          std::fprintf(stderr, "compare_steps: worker failed: %s\n", cmd.c_str());
          continue;
        }
        for (double v : j["ms"]) (scalpel_side ? ms_s : ms_t).push_back(v);
        (scalpel_side ? last_s : last_t) = j;
      }
    }
    const double ms = median(ms_s), mt = median(ms_t);
    medians[c] = {ms, mt};
    const double gflop = last_s.is_null() ? NAN : last_s.value("gemm_gflop", NAN);
    std::string ratio = "n/a";
    if (!last_s.is_null() && !last_t.is_null()) {
      if (last_s["threads"] != last_t["threads"]) {
        ratio = "refused: threads " + last_s["threads"].dump() + " vs " + last_t["threads"].dump();
      } else if (last_s["blas"] != last_t["blas"]) {
        ratio = "refused: BLAS " + last_s["blas"].get<std::string>() + " vs " + last_t["blas"].get<std::string>();
      } else {
        ratio = fmt(ms / mt, "%.2f");
      }
    }
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n", c.c_str(), fmt(ms, "%.1f").c_str(),
                fmt(mt, "%.1f").c_str(), ratio.c_str(), fmt(gflop, "%.2f").c_str(),
                fmt(gflop / (ms * 1e-3) / fma, "%.2f").c_str(), fmt(gflop / (ms * 1e-3) / sgemm_median, "%.2f").c_str(),
                last_s.is_null() ? "n/a" : fmt(last_s.value("rss_net_mb", NAN), "%.0f").c_str(),
                last_t.is_null() ? "n/a" : fmt(last_t.value("rss_net_mb", NAN), "%.0f").c_str(),
                last_s.is_null() ? "n/a" : fmt(last_s.value("faults_per_step", NAN), "%.0f").c_str());
    if (!last_s.is_null()) kernels_scalpel = last_s.value("kernels", "") + "; BLAS " + last_s.value("blas", "");
    if (!last_t.is_null()) kernels_torch = last_t.value("kernels", "") + "; BLAS " + last_t.value("blas", "");
  }
  // Each surgeon's step over its floor (issue 14's target: within 5 %), when the floor ran too.
  for (const char* model : {"twohead_w16", "smooth_mlp"}) {
    const auto floor = medians.find(std::string(model) + "_floor/step");
    if (floor == medians.end()) continue;
    for (const char* method : {"mixed", "bloop"}) {
      const auto m = medians.find(std::string(model) + "_" + method + "/step");
      if (m == medians.end()) continue;
      std::printf("%s %s step / its floor (forward + one backward per loss + optimizer): Scalpel %s, PyTorch %s\n",
                  model, method, fmt(m->second.first / floor->second.first, "%.3f").c_str(),
                  fmt(m->second.second / floor->second.second, "%.3f").c_str());
    }
    const auto fused = medians.find(std::string(model) + "_fused/step");
    if (fused == medians.end()) continue;
    std::printf(
        "%s floor / fused Mixed (what the per-loss backward costs over one sweep of the sum): Scalpel %s, "
        "PyTorch %s\n",
        model, fmt(floor->second.first / fused->second.first, "%.3f").c_str(),
        fmt(floor->second.second / fused->second.second, "%.3f").c_str());
  }
  std::printf(
      "\nmedians of %d round(s) x %d step(s) per side; ratio < 1: Scalpel faster. RSS: peak net of the "
      "runtime, per worker process.\nScalpel: %s\nPyTorch: %s\n",
      rounds, reps, kernels_scalpel.c_str(), torch ? kernels_torch.c_str() : "(not installed)");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Debian's interpreter (python3-torch installs there), not whatever python3 is first on PATH.
  std::string worker, python = "/usr/bin/python3", cases_arg;
  int rounds = 3, reps = 5, threads = 0;
  auto usage = [](const std::string& msg) {
    std::fprintf(stderr,
                 "compare_steps: %s\nusage: compare_steps [--cases a,b] [--rounds N] [--reps N] [--threads N] "
                 "[--python P]\n       compare_steps --worker CASE [--reps N]\n",
                 msg.c_str());
    return 2;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(std::string(flag) + " expects a value");
      return args[++i];
    };
    try {
      if (a == "--worker")
        worker = value("--worker");
      else if (a == "--cases")
        cases_arg = value("--cases");
      else if (a == "--python")
        python = value("--python");
      else if (a == "--rounds")
        rounds = std::stoi(value("--rounds"));
      else if (a == "--reps")
        reps = std::stoi(value("--reps"));
      else if (a == "--threads")
        threads = std::stoi(value("--threads"));
      else
        return usage("unknown flag '" + a + "'");
    } catch (const std::exception& e) {
      return usage(std::string("bad value for ") + a + ": " + e.what());
    }
  }
  if (rounds < 1 || reps < 1 || threads < 0) return usage("--rounds and --reps must be >= 1, --threads >= 0");
  try {
    if (!worker.empty()) return run_worker(worker, reps);
    if (threads == 0) threads = num_threads();
    std::vector<std::string> cases = kAllCases;
    if (!cases_arg.empty()) {
      cases.clear();
      std::stringstream ss(cases_arg);
      for (std::string c; std::getline(ss, c, ',');) {
        if (std::find(kAllCases.begin(), kAllCases.end(), c) == kAllCases.end())
          return usage("unknown case '" + c + "'");
        cases.push_back(c);
      }
    }
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return usage("cannot find my own path");
    self[n] = '\0';
    const std::string script = std::string(SCALPEL_SOURCE_DIR) + "/bench/compare_pytorch.py";
    return run_driver(cases, rounds, reps, threads, python, self, script);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "compare_steps: %s\n", e.what());
    return 1;
  }
}
