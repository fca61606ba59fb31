// Dataset: the interface every data source in scalpel::data implements, plus the in-memory
// 8-bit image dataset that the MNIST, CIFAR-10, image-folder and synthetic loaders all produce.
//
// A dataset has a fixed size and returns examples by index. An Example holds either a float input
// (an image [C, H, W] with values in [0, 1], or any fixed-shape feature tensor) plus one integer
// label per label set (MNIST: 1 set, Cifar10Mnist: 2 sets (cifar, digit)), or a token sequence
// (byte-level text: `tokens` [T] and next-token `targets` [T], -100 = ignored). Every example of
// a dataset has the same shape, which DatasetInfo announces, so the DataLoader (data/loader.h)
// can collate a batch into one contiguous tensor without looking at the examples first.
//
// Thread safety: `get` and `read` are const and must be safe to call from several threads at once
// (the DataLoader's prefetch worker calls them); every dataset here is immutable after
// construction. Indices outside [0, size()) throw std::out_of_range naming the dataset.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace scalpel {
namespace data {

// Which half of a dataset: the training split or the held-out test split.
enum class Split { Train, Test };
const char* split_name(Split split);  // "train" / "test"

// Mixes seeds and indices into one well-spread 64-bit seed (splitmix64 chain). Used to derive an
// independent Generator per (seed, epoch, index) so that results never depend on call order.
uint64_t mix_seed(uint64_t a, uint64_t b);
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c);

struct Example {
  Tensor input;                  // float input, e.g. an image [C, H, W] in [0, 1]; undefined for text
  std::vector<int64_t> labels;   // one class id per label set
  std::vector<int64_t> tokens;   // token input [T] (byte-level text); empty for images
  std::vector<int64_t> targets;  // next-token targets [T]; -100 marks a position not to score
};

// What every example of a dataset looks like.
struct DatasetInfo {
  std::string name;                  // for messages: "mnist train (data/mnist)", "synthetic-digits train"
  Shape input_shape;                 // float input per example, e.g. [1, 28, 28]; empty for text
  int64_t sequence_length = 0;       // T for token datasets, 0 otherwise
  std::vector<int64_t> num_classes;  // per label set; its size is the number of label sets
  // Optional class names per label set (same lengths as num_classes); empty when unnamed.
  std::vector<std::vector<std::string>> class_names;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t i) const = 0;
  virtual DatasetInfo info() const = 0;

  int64_t num_label_sets() const { return static_cast<int64_t>(info().num_classes.size()); }

  // Fast paths used by the DataLoader. `read` writes example i's float input (numel of
  // info().input_shape values, row-major) into `input` and its labels (num_label_sets values) into
  // `labels`. `read_tokens` writes T tokens and T targets. The defaults go through get(); in-memory
  // datasets override them to avoid allocating a Tensor per example.
  virtual void read(int64_t i, float* input, int64_t* labels) const;
  virtual void read_tokens(int64_t i, int64_t* tokens, int64_t* targets) const;

 protected:
  // Throws std::out_of_range "<name>: index i out of range [0, n)" unless 0 <= i < n.
  void check_index(int64_t i) const;
};

// Images stored as bytes [N, C, H, W] (value v means v / 255) with integer labels [N, L]. Returned
// by the MNIST, CIFAR-10, image-folder and synthetic image loaders; the exporters
// (data/export.h) write it back out in each real on-disk format.
class U8ImageDataset : public Dataset {
 public:
  // pixels.size() must be N*C*H*W and labels.size() N*L with L = num_classes.size(); every label
  // must lie in [0, num_classes[l]). Violations throw std::invalid_argument naming `name`.
  U8ImageDataset(std::string name, int64_t channels, int64_t height, int64_t width, std::vector<uint8_t> pixels,
                 std::vector<int64_t> labels, std::vector<int64_t> num_classes,
                 std::vector<std::vector<std::string>> class_names = {});

  int64_t size() const override { return size_; }
  Example get(int64_t i) const override;
  DatasetInfo info() const override;
  void read(int64_t i, float* input, int64_t* labels) const override;

  int64_t channels() const { return c_; }
  int64_t height() const { return h_; }
  int64_t width() const { return w_; }
  // The raw bytes of image i (C*H*W values) and its labels (num_label_sets values).
  const uint8_t* pixels(int64_t i) const;
  const int64_t* labels(int64_t i) const;
  int64_t label(int64_t i, int64_t set = 0) const { return labels(i)[set]; }

 private:
  std::string name_;
  int64_t c_, h_, w_, size_;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  std::vector<int64_t> num_classes_;
  std::vector<std::vector<std::string>> class_names_;
};

// The examples of another dataset at the given indices, in that order (each index must be valid).
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t i) const override;
  DatasetInfo info() const override;
  void read(int64_t i, float* input, int64_t* labels) const override;
  void read_tokens(int64_t i, int64_t* tokens, int64_t* targets) const override;

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};
// The first min(n, size) examples of `base`: handy for quick runs and tests.
std::shared_ptr<const Dataset> take(std::shared_ptr<const Dataset> base, int64_t n);

}  // namespace data
}  // namespace scalpel
