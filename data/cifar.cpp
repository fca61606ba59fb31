#include "data/cifar.h"

#include <stdexcept>

#include "data/io.h"

namespace scalpel {
namespace data {

const std::vector<std::string> kCifar10Classes = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                  "dog",      "frog",       "horse", "ship", "truck"};

void parse_cifar10_records(const uint8_t* bytes, size_t size, const std::string& source, std::vector<uint8_t>& pixels,
                           std::vector<int64_t>& labels) {
  const size_t rec = static_cast<size_t>(kCifarRecordBytes);
  if (size == 0) {
    throw std::runtime_error(
        source + ": empty CIFAR-10 file, expected a positive multiple of 3073 bytes (1 label + 3072 pixels per image)");
  }
  if (size % rec != 0) {
    throw std::runtime_error(source + ": size " + std::to_string(size) +
                             " bytes is not a multiple of 3073 (1 label + 3072 pixels): found " +
                             std::to_string(size / rec) + " whole records and " + std::to_string(size % rec) +
                             " stray bytes (truncated or not a CIFAR-10 binary file)");
  }
  const size_t n = size / rec;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t label = bytes[i * rec];
    if (label > 9) {
      throw std::runtime_error(source + ": record " + std::to_string(i) + " has label " + std::to_string(label) +
                               ", expected 0..9 (CIFAR-100 or a corrupt file?)");
    }
  }
  const size_t base = pixels.size();
  pixels.resize(base + n * (rec - 1));
  labels.reserve(labels.size() + n);
  for (size_t i = 0; i < n; ++i) {
    labels.push_back(bytes[i * rec]);
    std::copy(bytes + i * rec + 1, bytes + (i + 1) * rec,
              pixels.begin() + static_cast<std::ptrdiff_t>(base + i * (rec - 1)));
  }
}

std::shared_ptr<U8ImageDataset> parse_cifar10(const std::vector<std::vector<uint8_t>>& files,
                                              const std::vector<std::string>& sources, const std::string& name) {
  if (files.size() != sources.size() || files.empty()) {
    throw std::invalid_argument("parse_cifar10: expected one source name per buffer and at least one buffer, got " +
                                std::to_string(files.size()) + " buffers and " + std::to_string(sources.size()) +
                                " names");
  }
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (size_t f = 0; f < files.size(); ++f)
    parse_cifar10_records(files[f].data(), files[f].size(), sources[f], pixels, labels);
  return std::make_shared<U8ImageDataset>(name, 3, 32, 32, std::move(pixels), std::move(labels),
                                          std::vector<int64_t>{10},
                                          std::vector<std::vector<std::string>>{kCifar10Classes});
}

std::shared_ptr<U8ImageDataset> load_cifar10_files(const std::vector<std::string>& paths, const std::string& name) {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  if (paths.empty()) throw std::invalid_argument("load_cifar10_files: no files given");
  for (const std::string& p : paths) {
    const std::vector<uint8_t> bytes = read_file(p);
    parse_cifar10_records(bytes.data(), bytes.size(), p, pixels, labels);
  }
  return std::make_shared<U8ImageDataset>(name, 3, 32, 32, std::move(pixels), std::move(labels),
                                          std::vector<int64_t>{10},
                                          std::vector<std::vector<std::string>>{kCifar10Classes});
}

std::vector<std::string> cifar10_file_names(Split split) {
  if (split == Split::Test) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
}

std::vector<std::string> find_cifar10_files(const std::string& dir, Split split) {
  std::vector<std::string> out;
  for (const std::string& n : cifar10_file_names(split)) {
    const std::string p = join_path(dir, n);
    if (!file_exists(p)) return {};
    out.push_back(p);
  }
  return out;
}

std::shared_ptr<U8ImageDataset> load_cifar10(const std::string& dir, Split split) {
  std::vector<std::string> paths;
  for (const std::string& n : cifar10_file_names(split)) {
    const std::string p = join_path(dir, n);
    if (!file_exists(p)) {
      throw std::runtime_error(p + ": CIFAR-10 " + split_name(split) + " file not found (expected " +
                               (split == Split::Train ? "data_batch_1.bin .. data_batch_5.bin" : "test_batch.bin") +
                               " in " + dir + "; run scripts/fetch-data.sh or pass --data-dir)");
    }
    paths.push_back(p);
  }
  return load_cifar10_files(paths, std::string("cifar10 ") + split_name(split) + " (" + dir + ")");
}

void write_cifar10(const U8ImageDataset& ds, const std::string& dir, Split split) {
  if (ds.channels() != 3 || ds.height() != 32 || ds.width() != 32) {
    throw std::invalid_argument("write_cifar10(" + ds.info().name +
                                "): CIFAR binary holds [3, 32, 32] images, found [" + std::to_string(ds.channels()) +
                                ", " + std::to_string(ds.height()) + ", " + std::to_string(ds.width()) + "]");
  }
  if (ds.num_label_sets() < 1)
    throw std::invalid_argument("write_cifar10(" + ds.info().name + "): the dataset has no labels");
  make_dirs(dir);
  const std::vector<std::string> names = cifar10_file_names(split);
  const int64_t n = ds.size(), parts = static_cast<int64_t>(names.size());
  if (n < parts) {
    throw std::invalid_argument("write_cifar10(" + ds.info().name + "): a " + split_name(split) +
                                " split needs at least " + std::to_string(parts) + " images (one per file), found " +
                                std::to_string(n));
  }
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t lo = n * p / parts, hi = n * (p + 1) / parts;
    std::vector<uint8_t> bytes;
    bytes.reserve(static_cast<size_t>((hi - lo) * kCifarRecordBytes));
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t label = ds.label(i);
      if (label > 255) {
        throw std::invalid_argument("write_cifar10(" + ds.info().name + "): label " + std::to_string(label) +
                                    " does not fit in a byte");
      }
      bytes.push_back(static_cast<uint8_t>(label));
      bytes.insert(bytes.end(), ds.pixels(i), ds.pixels(i) + 3072);
    }
    write_bytes_atomic(join_path(dir, names[static_cast<size_t>(p)]), bytes);
  }
  const DatasetInfo inf = ds.info();
  std::string meta;
  for (int64_t c = 0; c < inf.num_classes[0]; ++c) {
    meta += (!inf.class_names.empty() ? inf.class_names[0][static_cast<size_t>(c)] : std::to_string(c)) + "\n";
  }
  write_text_atomic(join_path(dir, "batches.meta.txt"), meta);
}

}  // namespace data
}  // namespace scalpel
