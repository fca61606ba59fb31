// MNIST in the idx format as distributed (train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), raw or gzipped (auto-detected from the
// content; the ".gz" name is optional), plus the idx writer used by `scalpel-data export`.
//
// idx layout (big-endian): bytes 0-1 zero, byte 2 the element type (0x08 = unsigned byte, the only
// type MNIST uses), byte 3 the rank; then rank u32 sizes; then the elements, row-major. Images
// are rank 3 [N, 28, 28] (magic 0x00000803), labels rank 1 [N] (magic 0x00000801).
//
// Every check names the file and what was expected vs found: wrong magic, zero or absurd sizes,
// truncated or oversized payloads, image/label count mismatch, a label outside [0, 9].
// The parsers take in-memory buffers (used by the libFuzzer target data/fuzz/fuzz_parsers.cpp)
// as well as files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/io.h"

namespace scalpel {
namespace data {

// A parsed unsigned-byte idx array.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

// Parses raw (not gzipped) idx bytes of the given rank. Throws std::runtime_error naming `source`.
IdxArray parse_idx(const uint8_t* bytes, size_t size, int64_t expected_rank, const std::string& source);
// Serialises an unsigned-byte idx array (the inverse of parse_idx).
std::vector<uint8_t> encode_idx(const std::vector<int64_t>& dims, const std::vector<uint8_t>& data);

// MNIST from in-memory idx buffers (each raw or gzipped). Images [N, H, W] with labels [N] in
// [0, num_classes). Names are used in messages and the dataset name.
std::shared_ptr<U8ImageDataset> parse_mnist(const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels,
                                            const std::string& images_source, const std::string& labels_source,
                                            const std::string& name = "mnist", int64_t num_classes = 10,
                                            uint64_t max_bytes = kMaxDecompressedBytes);
// From two files.
std::shared_ptr<U8ImageDataset> load_mnist_files(const std::string& images_path, const std::string& labels_path,
                                                 const std::string& name = "mnist");

// The file paths of a split inside `dir` ("train-images-idx3-ubyte" or with ".gz", also the
// "train-images.idx3-ubyte" spelling some mirrors use). Empty strings when not found.
struct MnistFiles {
  std::string images, labels;
  bool found() const { return !images.empty() && !labels.empty(); }
};
MnistFiles find_mnist_files(const std::string& dir, Split split);
// Loads a split from `dir`; throws std::runtime_error listing the file names it looked for.
std::shared_ptr<U8ImageDataset> load_mnist(const std::string& dir, Split split);

// Writes images (C must be 1) and the first label set as idx files "<prefix>-images-idx3-ubyte"
// and "<prefix>-labels-idx1-ubyte" (prefix "train" or "t10k"), gzipped with a ".gz" suffix when
// `gzip_files`. Atomic writes.
void write_mnist(const U8ImageDataset& ds, const std::string& dir, Split split, bool gzip_files = false);

}  // namespace data
}  // namespace scalpel
