// combine() must not allocate O(P) memory after its first call. This file replaces the global
// operator new and interposes aligned_alloc (which Tensor storage uses) for the whole test binary,
// counting allocations of at least `g_threshold` bytes while `g_counting` is set. Tensors below the
// storage block cache's 64 KiB floor always reach aligned_alloc, so P is chosen below it.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "optim/surgery/surgeon.h"
#include "surgery_test_util.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_big_allocations{0};
std::atomic<size_t> g_threshold{0};

void note(size_t size) {
  if (g_counting.load(std::memory_order_relaxed) && size >= g_threshold.load(std::memory_order_relaxed)) {
    g_big_allocations.fetch_add(1, std::memory_order_relaxed);
  }
}
}  // namespace

extern "C" void* aligned_alloc(size_t alignment, size_t size) noexcept {
  note(size);
  void* p = nullptr;
  if (posix_memalign(&p, alignment < sizeof(void*) ? sizeof(void*) : alignment, size) != 0) return nullptr;
  return p;
}

void* operator new(size_t size) {
  note(size);
  void* p = std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace {
// Big allocations made by f().
template <class F>
int64_t big_allocations(size_t threshold, F&& f) {
  g_threshold = threshold;
  g_big_allocations = 0;
  g_counting = true;
  f();
  g_counting = false;
  return g_big_allocations.load();
}
}  // namespace

using namespace scalpel;
using namespace scalpel::surgery;

TEST(SurgeryAllocations, CounterSeesTensorAndVectorAllocations) {
  // The hook must be able to fail the test below.
  EXPECT_EQ(big_allocations(24000, [] { GradVector v(12000); }), 1);
  EXPECT_EQ(big_allocations(24000, [] { std::vector<float> v(12000); }), 1);
  EXPECT_EQ(big_allocations(24000, [] { std::vector<float> v(100); }), 0);
}

TEST(SurgeryAllocations, CombineAllocatesNoOPMemoryAfterTheFirstCall) {
  const int64_t P = 12000;  // 48 kB per vector, below the block cache's floor
  const size_t threshold = P * sizeof(float) / 2;
  Generator gen(3);
  std::vector<GradVector> g;
  for (int k = 0; k < 3; ++k) g.push_back(scalpel::testing::random_gv(P, gen));
  for (const std::string& m : surgeon_names()) {
    for (int K : {1, 2}) {
      for (double rho : {0.01, 1.0}) {
        for (EmaOrder order : {EmaOrder::UpdateThenProject, EmaOrder::ProjectThenUpdate}) {
          auto s = make_surgeon(m, SurgeonOptions().lambda(0.5).rho(rho).ema_order(order));
          std::vector<const GradVector*> ptrs{&g[0], &g[1]};
          if (K == 2) ptrs.push_back(&g[2]);
          GradVector d;
          SurgeryDiagnostics diag;
          const int64_t first = big_allocations(threshold, [&] { s->combine(ptrs, {}, d, &diag); });
          EXPECT_GE(first, 1) << "d is sized on the first call";
          const int64_t later = big_allocations(threshold, [&] {
            for (int i = 0; i < 3; ++i) s->combine(ptrs, {}, d, &diag);
          });
          EXPECT_EQ(later, 0) << m << " K=" << K << " rho " << rho;
        }
      }
    }
  }
}
