// BlockCache: the recycler behind Storage's large blocks (core/tensor.cpp), on its own so its
// policy can be tested with a private instance.
//
// Freed blocks of kMinBytes (64 KiB) or more are kept for reuse instead of returned to the OS.
// glibc serves large blocks with mmap (always above 32 MiB) and trims its heap top on free, so
// without this every fresh tensor paid a page fault per 4 KiB page on first touch: large
// elementwise ops ran 3-4x slower than the same loop into a reused buffer, and a ResNet-18
// width-16 training step took 1,300 faults (docs/performance-notes.md).
//
// take(bytes) returns a held block of exactly `bytes` if there is one (the most recently freed
// first), else the smallest held block of at most 1.5 x `bytes`, and reports the block's
// real size, which its owner hands back to give(). Without the looser fit a step's many sizes
// each kept their own blocks: on the width-64 ResNet-18 at batch 128, 566 MB sat cached in 15
// sizes while 161 MB were live (Findings 8 and 9). give() keeps at most the capacity, evicting the oldest.
// The process-wide instance() takes its capacity from SCALPEL_ALLOC_CACHE_MB (MiB, default 1024,
// 0 disables) and is off under AddressSanitizer, so use-after-free stays detectable there.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>

namespace scalpel {

class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 10;
  // A block of b bytes may serve a request of n < b bytes when b <= kFitNum / kFitDen * n (1.5x:
  // 2x let a large block go to a small request and the large one allocate afresh, ByteLM 12 layers
  // +21 MB; 1.25x the same on the ResNet, 5 MB more on ByteLM; Finding 9).
  static constexpr size_t kFitNum = 3, kFitDen = 2;

  explicit BlockCache(size_t capacity_bytes) : cap_(capacity_bytes) {}
  ~BlockCache();  // frees every held block
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // The cache Storage uses; never destroyed (storages may outlive statics). Throws
  // std::invalid_argument naming SCALPEL_ALLOC_CACHE_MB when it is not a non-negative integer.
  static BlockCache& instance();

  // A held block of at least `bytes` (its size into *got), or null: the caller allocates.
  void* take(size_t bytes, size_t* got);
  // Keeps p (a block of `bytes` from std::aligned_alloc) for reuse, or frees it.
  void give(void* p, size_t bytes);

  size_t held_bytes() const;
  size_t capacity_bytes() const { return cap_; }

 private:
  mutable std::mutex mu_;
  std::deque<std::pair<size_t, void*>> blocks_;  // (bytes, block), oldest first
  size_t held_ = 0;
  size_t cap_;
};

}  // namespace scalpel
