// DataLoader: batches a Dataset into contiguous tensors, with seeded per-epoch shuffling,
// drop_last, optional background prefetch, and a resumable (epoch, batch) position.
//
// Order. Epoch e visits the dataset in the permutation drawn (Fisher-Yates) from
// Generator(mix_seed(seed, e)), or in index order without shuffle. Batch b holds positions
// [b*B, (b+1)*B) of that order; the last, shorter batch is kept unless drop_last. The order
// depends only on (seed, epoch, dataset size, batch size): never on prefetching or threads.
//
// Augmentation. The transform (data/transforms.h) runs on each example with its own Generator
// seeded from (seed, epoch, dataset index), so a given example is augmented the same way whether
// or not batches are prefetched, and differently in every epoch.
//
// Prefetch. With prefetch(true), a worker thread builds the next `prefetch_depth` batches of the
// current epoch ahead of time. It produces exactly the batches the synchronous path would, in the
// same order; an exception thrown while building a batch is rethrown by the next() that would
// have returned it. The dataset must be safe for concurrent const access (all of ours are).
// Without prefetch, next() splits a batch's examples over the OpenMP threads (parallel_for); the
// prefetch worker builds each batch on its own single thread so that it does not compete with the
// training step's threads. Either way every row is a pure function of (seed, epoch, index).
//
// Usage:
//   DataLoader loader(train, DataLoaderOptions().batch_size(256).shuffle(true).seed(1));
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     Batch b;
//     while (loader.next(b)) { ... b.input [B, C, H, W], b.labels[0] [B] ... }
//   }
// Sharding (data parallel): with shard(rank, count) each batch is cut into `count` contiguous
// parts as equal as possible and this loader returns part `rank` (Batch::global_size says how
// many rows the whole batch has; a short last batch with fewer rows than ranks is left out). The
// position and state are those of the global batches, so a checkpoint written at one count
// resumes at another.
//
// Resuming: save `state_dict()` with a checkpoint; after `load_state_dict()` the next next()
// returns exactly the batch the original run would have returned next (bit-identical, including
// augmentation).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/state_dict.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace scalpel {
namespace data {

struct Batch {
  Tensor input;                     // [B, ...transformed input shape]; undefined for text
  std::vector<IndexTensor> labels;  // one [B] tensor per label set
  IndexTensor tokens;               // [B, T] for token datasets
  IndexTensor targets;              // [B, T] for token datasets (-100 = ignore)
  std::vector<int64_t> indices;     // dataset index of each row
  int64_t global_size = 0;          // rows of the whole (unsharded) batch; size() without sharding
  int64_t epoch = 0;
  int64_t batch_index = 0;
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

struct DataLoaderOptions {
  int64_t batch_size_ = 64;
  bool shuffle_ = true;
  bool drop_last_ = false;
  uint64_t seed_ = 0;
  bool prefetch_ = false;
  int64_t prefetch_depth_ = 2;
  TransformPtr transform_;
  int64_t shard_rank_ = 0;
  int64_t shard_count_ = 1;

  DataLoaderOptions& batch_size(int64_t v) {
    batch_size_ = v;
    return *this;
  }
  DataLoaderOptions& shuffle(bool v) {
    shuffle_ = v;
    return *this;
  }
  DataLoaderOptions& drop_last(bool v) {
    drop_last_ = v;
    return *this;
  }
  DataLoaderOptions& seed(uint64_t v) {
    seed_ = v;
    return *this;
  }
  DataLoaderOptions& prefetch(bool v) {
    prefetch_ = v;
    return *this;
  }
  DataLoaderOptions& prefetch_depth(int64_t v) {
    prefetch_depth_ = v;
    return *this;
  }
  // Data parallel: this process gets rows [⌊s·r/n⌋, ⌊s·(r+1)/n⌋) of every batch of s rows
  // (r = rank, n = count), so n loaders with the same seed and batch size together return each
  // global batch once. Order, augmentation and num_batches() are those of the unsharded loader.
  DataLoaderOptions& shard(int64_t rank, int64_t count) {
    shard_rank_ = rank;
    shard_count_ = count;
    return *this;
  }
  DataLoaderOptions& transform(TransformPtr t) {
    transform_ = std::move(t);
    return *this;
  }
};

// Where the loader is: the next call to next() returns batch `batch` of epoch `epoch`.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const LoaderPosition& o) const { return epoch == o.epoch && batch == o.batch; }
};

class DataLoader {
 public:
  // Throws std::invalid_argument for a null dataset, a non-positive batch size, an empty dataset,
  // or a transform that does not accept the dataset's input shape (message names both).
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = DataLoaderOptions());
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Batches per epoch: ceil(N / B), or floor(N / B) with drop_last, or when sharded over more
  // ranks than the short last batch has rows.
  int64_t num_batches() const;
  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  // Input shape of one transformed example (without the batch dimension).
  const Shape& example_shape() const { return example_shape_; }

  // Positions the loader at the start of `epoch` (any epoch, in any order).
  void start_epoch(int64_t epoch);
  // Fills `batch` with the next batch of the current epoch; false (batch untouched) at its end.
  bool next(Batch& batch);
  // Builds batch `b` of `epoch` directly (no position change); what next() would return there.
  Batch make_batch(int64_t epoch, int64_t b) const;
  // The dataset indices of epoch `epoch` in visiting order (before batching).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  LoaderPosition position() const { return pos_; }
  // Jumps to a position; batch may equal num_batches() (the epoch is then finished).
  void seek(LoaderPosition pos);
  // {epoch, batch, seed, dataset_size, batch_size, drop_last, shuffle} as exact integers.
  StateDict state_dict() const;
  // Restores the position; throws std::runtime_error naming the field when the saved seed,
  // dataset size, batch size, drop_last or shuffle differ from this loader's.
  void load_state_dict(const StateDict& state);

 private:
  void stop_worker();
  void start_worker();
  void worker_loop(int64_t epoch, int64_t first);

  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  DatasetInfo info_;
  Shape example_shape_;
  LoaderPosition pos_;
  std::vector<int64_t> order_;  // of pos_.epoch
  int64_t order_epoch_ = -1;

  // Prefetch state (guarded by mu_).
  struct Slot {
    int64_t batch_index;
    Batch batch;
    std::exception_ptr error;
  };
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Slot> queue_;
  bool stop_ = false;
  bool worker_running_ = false;
};

}  // namespace data
}  // namespace scalpel
