// CIFAR-10 in its binary version (cifar-10-batches-bin/): data_batch_1.bin .. data_batch_5.bin
// (train, 50,000 images) and test_batch.bin (test, 10,000).
//
// Each file is a sequence of 3073-byte records: 1 label byte (0..9) then 3072 pixel bytes, the
// 1024 red values of the 32x32 image in row-major order, then green, then blue. The dataset
// returns images [3, 32, 32] in [0, 1]. Errors name the file: a size that is not a positive
// multiple of 3073 (says how many records and stray bytes it found) or a label above 9 (with the
// record index). The parser takes in-memory buffers (used by the fuzz target) as well as files.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace scalpel {
namespace data {

constexpr int64_t kCifarRecordBytes = 3073;

// CIFAR-10 class names, index = label.
extern const std::vector<std::string> kCifar10Classes;

// Appends the records of one buffer to `pixels` / `labels`. Throws std::runtime_error naming `source`.
void parse_cifar10_records(const uint8_t* bytes, size_t size, const std::string& source, std::vector<uint8_t>& pixels,
                           std::vector<int64_t>& labels);
// One dataset from in-memory buffers (one per file).
std::shared_ptr<U8ImageDataset> parse_cifar10(const std::vector<std::vector<uint8_t>>& files,
                                              const std::vector<std::string>& sources,
                                              const std::string& name = "cifar10");
// From files, concatenated in the given order.
std::shared_ptr<U8ImageDataset> load_cifar10_files(const std::vector<std::string>& paths,
                                                   const std::string& name = "cifar10");
// The standard file names of a split inside `dir` (all must exist); empty when any is missing.
// The file names of a split: data_batch_1.bin .. data_batch_5.bin, or test_batch.bin.
std::vector<std::string> cifar10_file_names(Split split);
std::vector<std::string> find_cifar10_files(const std::string& dir, Split split);
// Loads a split from `dir`; throws std::runtime_error naming the missing file.
std::shared_ptr<U8ImageDataset> load_cifar10(const std::string& dir, Split split);

// Writes a [3, 32, 32] dataset (first label set in 0..255) as CIFAR binary: train splits into
// data_batch_1..5.bin (as equal as possible), test into test_batch.bin; plus batches.meta.txt
// with the class names. Atomic writes.
void write_cifar10(const U8ImageDataset& ds, const std::string& dir, Split split);

}  // namespace data
}  // namespace scalpel
