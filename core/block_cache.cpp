#include "core/block_cache.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)  // clang spelling of __SANITIZE_ADDRESS__
#define SCALPEL_HAS_ASAN_FEATURE 1
#endif
#endif
#ifndef SCALPEL_HAS_ASAN_FEATURE
#define SCALPEL_HAS_ASAN_FEATURE 0
#endif

namespace scalpel {

namespace {

size_t capacity_from_env() {
#if defined(__SANITIZE_ADDRESS__) || SCALPEL_HAS_ASAN_FEATURE
  return 0;
#else
  const char* v = std::getenv("SCALPEL_ALLOC_CACHE_MB");
  if (!v || !*v) return size_t{1024} << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  if (*end != '\0' || mb < 0) {
    throw std::invalid_argument(std::string("SCALPEL_ALLOC_CACHE_MB: expected a non-negative integer (MiB; 0 "
                                            "disables the tensor block cache), found '") +
                                v + "'");
  }
  return static_cast<size_t>(mb) << 20;
#endif
}

}  // namespace

BlockCache::~BlockCache() {
  for (auto& b : blocks_) std::free(b.second);
}

BlockCache& BlockCache::instance() {
  static BlockCache* cache = new BlockCache(capacity_from_env());
  return *cache;
}

void* BlockCache::take(size_t bytes, size_t* got) {
  if (bytes < kMinBytes || cap_ == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  size_t best = blocks_.size();
  for (size_t i = blocks_.size(); i-- > 0;) {
    const size_t b = blocks_[i].first;
    if (b == bytes) {
      best = i;
      break;
    }
    const bool fits = b > bytes && b * kFitDen <= bytes * kFitNum;  // b <= 1.5 bytes
    if (fits && (best == blocks_.size() || b < blocks_[best].first)) best = i;
  }
  if (best == blocks_.size()) return nullptr;
  void* p = blocks_[best].second;
  *got = blocks_[best].first;
  held_ -= *got;
  blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(best));
  return p;
}

void BlockCache::give(void* p, size_t bytes) {
  if (bytes < kMinBytes || bytes > cap_) {
    std::free(p);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  while (held_ + bytes > cap_) {
    std::free(blocks_.front().second);
    held_ -= blocks_.front().first;
    blocks_.pop_front();
  }
  blocks_.emplace_back(bytes, p);
  held_ += bytes;
}

size_t BlockCache::held_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_;
}

}  // namespace scalpel
