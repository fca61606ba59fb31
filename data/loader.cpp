#include "data/loader.h"

#include <numeric>

#include <stdexcept>
#include "core/parallel.h"

namespace scalpel {
namespace data {

namespace {
constexpr uint64_t kShuffleSalt = 0x53485546464C45ull;  // "SHUFFLE"
constexpr uint64_t kAugmentSalt = 0x4155474D454E54ull;  // "AUGMENT"
}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  if (!dataset_) throw std::invalid_argument("DataLoader: dataset is null");
  info_ = dataset_->info();
  if (options_.batch_size_ <= 0) {
    throw std::invalid_argument("DataLoader(" + info_.name + "): batch_size must be positive, got " +
                                std::to_string(options_.batch_size_));
  }
  if (options_.prefetch_depth_ <= 0) {
    throw std::invalid_argument("DataLoader(" + info_.name + "): prefetch_depth must be positive, got " +
                                std::to_string(options_.prefetch_depth_));
  }
  if (dataset_->size() <= 0) throw std::invalid_argument("DataLoader(" + info_.name + "): the dataset is empty");
  if (options_.shard_count_ < 1 || options_.shard_rank_ < 0 || options_.shard_rank_ >= options_.shard_count_) {
    throw std::invalid_argument("DataLoader(" + info_.name + "): shard " + std::to_string(options_.shard_rank_) +
                                " of " + std::to_string(options_.shard_count_) +
                                " is out of range (expected 0 <= rank < count)");
  }
  if (options_.batch_size_ < options_.shard_count_) {
    throw std::invalid_argument("DataLoader(" + info_.name + "): batch size " + std::to_string(options_.batch_size_) +
                                " cannot be split over " + std::to_string(options_.shard_count_) +
                                " ranks (every rank needs at least one row); use a batch size >= the number of ranks");
  }
  example_shape_ = info_.input_shape;
  if (options_.transform_) {
    if (info_.input_shape.empty()) {
      throw std::invalid_argument("DataLoader(" + info_.name + "): a transform (" + options_.transform_->describe() +
                                  ") was given but the dataset has no float input (token data)");
    }
    example_shape_ = options_.transform_->output_shape(info_.input_shape);
    if (shape_numel(example_shape_) != shape_numel(info_.input_shape)) {
      throw std::logic_error("DataLoader: transform " + options_.transform_->describe() +
                             " changed the element count from " + shape_str(info_.input_shape) + " to " +
                             shape_str(example_shape_));
    }
  }
}

DataLoader::~DataLoader() { stop_worker(); }

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), b = options_.batch_size_;
  // Sharded, a short last batch with fewer rows than ranks is left out (a rank would get none).
  const bool drop = options_.drop_last_ || (n % b != 0 && n % b < options_.shard_count_);
  return drop ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(dataset_->size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options_.shuffle_) {
    Generator gen(mix_seed(options_.seed_ ^ kShuffleSalt, static_cast<uint64_t>(epoch)));
    for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) {
      const int64_t j = gen.randint(i + 1);
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
  }
  return order;
}

namespace {

// Builds batch b from a precomputed epoch order. Pure function of its arguments.
// `parallel`: split the rows over the OpenMP threads (the synchronous path only; the prefetch
// worker stays single-threaded so that it does not compete with the training step's threads).
// Every row is a pure function of (seed, epoch, index), so the result is the same either way.
Batch build_batch(const Dataset& ds, const DatasetInfo& info, const DataLoaderOptions& opt, const Shape& example_shape,
                  const std::vector<int64_t>& order, int64_t epoch, int64_t b, bool parallel) {
  const int64_t n = static_cast<int64_t>(order.size());
  const int64_t start = b * opt.batch_size_;
  const int64_t end = std::min(n, start + opt.batch_size_);
  if (start >= end) throw std::logic_error("DataLoader: batch " + std::to_string(b) + " is past the end of the epoch");
  const int64_t global = end - start;
  // This rank's part of the batch (all of it without sharding); never empty, since
  // num_batches() leaves out a last batch with fewer rows than ranks.
  const int64_t lo = start + global * opt.shard_rank_ / opt.shard_count_;
  const int64_t hi = start + global * (opt.shard_rank_ + 1) / opt.shard_count_;
  const int64_t bs = hi - lo;
  Batch out;
  out.epoch = epoch;
  out.batch_index = b;
  out.global_size = global;
  out.indices.assign(order.begin() + lo, order.begin() + hi);
  const int64_t nl = static_cast<int64_t>(info.num_classes.size());
  out.labels.assign(static_cast<size_t>(nl), IndexTensor(std::vector<int64_t>(static_cast<size_t>(bs)), Shape{bs}));

  if (!info.input_shape.empty()) {
    const int64_t per = shape_numel(info.input_shape);
    Shape full{bs};
    full.insert(full.end(), example_shape.begin(), example_shape.end());
    out.input = Tensor::empty(full);
    float* dst = out.input.data();
    auto rows = [&](int64_t r0, int64_t r1) {
      std::vector<int64_t> lab(static_cast<size_t>(nl));
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t idx = out.indices[static_cast<size_t>(r)];
        ds.read(idx, dst + r * per, lab.data());
        for (int64_t l = 0; l < nl; ++l)
          out.labels[static_cast<size_t>(l)].data[static_cast<size_t>(r)] = lab[static_cast<size_t>(l)];
        if (opt.transform_) {
          Generator gen(mix_seed(opt.seed_ ^ kAugmentSalt, static_cast<uint64_t>(epoch), static_cast<uint64_t>(idx)));
          opt.transform_->apply(dst + r * per, info.input_shape, gen);
        }
      }
    };
    if (parallel) {
      // At least ~16k floats of output per chunk so tiny batches stay serial. An exception must
      // not leave an OpenMP region: each chunk catches its own, and the one of the earliest row is
      // rethrown (the same error the serial path would raise).
      std::mutex mu;
      std::exception_ptr first_error;
      int64_t first_row = bs;
      parallel_for(bs, std::max<int64_t>(1, 16384 / std::max<int64_t>(per, 1)), [&](int64_t r0, int64_t r1) {
        try {
          rows(r0, r1);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (r0 < first_row) {
            first_row = r0;
            first_error = std::current_exception();
          }
        }
      });
      if (first_error) std::rethrow_exception(first_error);
    } else {
      rows(0, bs);
    }
  }
  if (info.sequence_length > 0) {
    const int64_t t = info.sequence_length;
    out.tokens = IndexTensor(std::vector<int64_t>(static_cast<size_t>(bs * t)), Shape{bs, t});
    out.targets = IndexTensor(std::vector<int64_t>(static_cast<size_t>(bs * t)), Shape{bs, t});
    for (int64_t r = 0; r < bs; ++r) {
      const int64_t idx = out.indices[static_cast<size_t>(r)];
      ds.read_tokens(idx, out.tokens.data.data() + r * t, out.targets.data.data() + r * t);
    }
  }
  return out;
}

}  // namespace

Batch DataLoader::make_batch(int64_t epoch, int64_t b) const {
  if (b < 0 || b >= num_batches()) {
    throw std::out_of_range("DataLoader(" + info_.name + "): batch " + std::to_string(b) + " out of range [0, " +
                            std::to_string(num_batches()) + ")");
  }
  return build_batch(*dataset_, info_, options_, example_shape_, epoch_order(epoch), epoch, b, true);
}

void DataLoader::start_epoch(int64_t epoch) { seek({epoch, 0}); }

void DataLoader::seek(LoaderPosition pos) {
  if (pos.epoch < 0 || pos.batch < 0 || pos.batch > num_batches()) {
    throw std::out_of_range("DataLoader(" + info_.name + "): cannot seek to epoch " + std::to_string(pos.epoch) +
                            " batch " + std::to_string(pos.batch) +
                            " (batches per epoch: " + std::to_string(num_batches()) + ")");
  }
  stop_worker();
  pos_ = pos;
}

bool DataLoader::next(Batch& batch) {
  if (pos_.batch >= num_batches()) return false;
  if (order_epoch_ != pos_.epoch) {
    stop_worker();
    order_ = epoch_order(pos_.epoch);
    order_epoch_ = pos_.epoch;
  }
  if (!options_.prefetch_) {
    batch = build_batch(*dataset_, info_, options_, example_shape_, order_, pos_.epoch, pos_.batch, true);
    ++pos_.batch;
    return true;
  }
  if (!worker_running_) start_worker();
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty(); });
    slot = std::move(queue_.front());
    queue_.pop_front();
  }
  cv_.notify_all();
  if (slot.batch_index != pos_.batch) {
    throw std::logic_error("DataLoader: prefetch worker produced batch " + std::to_string(slot.batch_index) +
                           ", expected " + std::to_string(pos_.batch));
  }
  if (slot.error) {
    stop_worker();  // the position stays on the failing batch, as in the synchronous path
    std::rethrow_exception(slot.error);
  }
  batch = std::move(slot.batch);
  ++pos_.batch;
  return true;
}

void DataLoader::start_worker() {
  stop_worker();
  worker_running_ = true;
  stop_ = false;
  worker_ = std::thread([this, epoch = pos_.epoch, first = pos_.batch] { worker_loop(epoch, first); });
}

void DataLoader::worker_loop(int64_t epoch, int64_t first) {
  const int64_t nb = num_batches();
  for (int64_t b = first; b < nb; ++b) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || static_cast<int64_t>(queue_.size()) < options_.prefetch_depth_; });
      if (stop_) return;
    }
    Slot slot;
    slot.batch_index = b;
    try {
      slot.batch = build_batch(*dataset_, info_, options_, example_shape_, order_, epoch, b, false);
    } catch (...) {
      slot.error = std::current_exception();
    }
    const bool failed = static_cast<bool>(slot.error);
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(slot));
    }
    cv_.notify_all();
    if (failed) return;
  }
}

void DataLoader::stop_worker() {
  if (!worker_running_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  queue_.clear();
  stop_ = false;
  worker_running_ = false;
}

StateDict DataLoader::state_dict() const {
  StateDict s;
  s.set_int("epoch", pos_.epoch);
  s.set_int("batch", pos_.batch);
  s.set_int("seed", static_cast<int64_t>(options_.seed_));
  s.set_int("dataset_size", dataset_->size());
  s.set_int("batch_size", options_.batch_size_);
  s.set_int("drop_last", options_.drop_last_ ? 1 : 0);
  s.set_int("shuffle", options_.shuffle_ ? 1 : 0);
  return s;
}

void DataLoader::load_state_dict(const StateDict& state) {
  auto expect = [&](const char* key, int64_t mine) {
    if (!state.has_scalar(key)) {
      throw std::runtime_error("DataLoader(" + info_.name + ").load_state_dict: missing field '" + key + "'");
    }
    const int64_t saved = state.get_int(key);
    if (saved != mine) {
      throw std::runtime_error("DataLoader(" + info_.name + ").load_state_dict: field '" + key + "' was saved as " +
                               std::to_string(saved) + " but this loader has " + std::to_string(mine) +
                               " (resume with the same data and loader options)");
    }
  };
  expect("seed", static_cast<int64_t>(options_.seed_));
  expect("dataset_size", dataset_->size());
  expect("batch_size", options_.batch_size_);
  expect("drop_last", options_.drop_last_ ? 1 : 0);
  expect("shuffle", options_.shuffle_ ? 1 : 0);
  if (!state.has_scalar("epoch") || !state.has_scalar("batch")) {
    throw std::runtime_error("DataLoader(" + info_.name + ").load_state_dict: missing field 'epoch' or 'batch'");
  }
  seek({state.get_int("epoch"), state.get_int("batch")});
}

}  // namespace data
}  // namespace scalpel
