#include "data/mnist.h"

#include <cstdio>
#include <stdexcept>

namespace scalpel {
namespace data {

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", v);
  return buf;
}

// Largest element count we accept in one idx file (well above MNIST's 47M bytes).
constexpr uint64_t kMaxIdxElements = uint64_t{1} << 32;

}  // namespace

IdxArray parse_idx(const uint8_t* bytes, size_t size, int64_t expected_rank, const std::string& source) {
  const uint32_t expected_magic = 0x00000800u | static_cast<uint32_t>(expected_rank);
  const std::string what = expected_rank == 1 ? "labels" : "images";
  if (size < 4) {
    throw std::runtime_error(source + ": truncated idx file: " + std::to_string(size) +
                             " bytes, expected at least a 4-byte magic number (" + hex32(expected_magic) + ")");
  }
  const uint32_t magic = be32(bytes);
  if (magic != expected_magic) {
    std::string hint;
    if ((magic & 0xFFFFFF00u) == 0x00000800u) {
      hint = " (an unsigned-byte idx file of rank " + std::to_string(magic & 0xFF) + ": images and labels swapped?)";
    } else if (bytes[0] == 0x1f && bytes[1] == 0x8b) {
      hint = " (gzip data: decompress first)";
    }
    throw std::runtime_error(source + ": wrong magic number: expected " + hex32(expected_magic) + " (unsigned-byte " +
                             what + " of rank " + std::to_string(expected_rank) + "), found " + hex32(magic) + hint);
  }
  const size_t header = 4 + 4 * static_cast<size_t>(expected_rank);
  if (size < header) {
    throw std::runtime_error(source + ": truncated idx header: " + std::to_string(size) + " bytes, expected " +
                             std::to_string(header));
  }
  IdxArray arr;
  uint64_t count = 1;
  for (int64_t d = 0; d < expected_rank; ++d) {
    const uint32_t n = be32(bytes + 4 + 4 * d);
    if (n == 0)
      throw std::runtime_error(source + ": idx dimension " + std::to_string(d) + " is 0, expected a positive size");
    count *= n;
    if (count > kMaxIdxElements) {
      throw std::runtime_error(source + ": idx sizes multiply to more than " + std::to_string(kMaxIdxElements) +
                               " elements (corrupt header)");
    }
    arr.dims.push_back(static_cast<int64_t>(n));
  }
  const uint64_t payload = size - header;
  if (payload != count) {
    std::string dims;
    for (size_t d = 0; d < arr.dims.size(); ++d) dims += (d ? " x " : "") + std::to_string(arr.dims[d]);
    throw std::runtime_error(source + ": " + (payload < count ? "truncated" : "oversized") + " idx file: header says " +
                             dims + " = " + std::to_string(count) + " bytes of " + what + ", found " +
                             std::to_string(payload) + " bytes after the header");
  }
  arr.data.assign(bytes + header, bytes + size);
  return arr;
}

std::vector<uint8_t> encode_idx(const std::vector<int64_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  out.reserve(4 + 4 * dims.size() + data.size());
  auto put32 = [&](uint32_t v) {
    out.push_back(static_cast<uint8_t>(v >> 24));
    out.push_back(static_cast<uint8_t>(v >> 16));
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
  };
  put32(0x00000800u | static_cast<uint32_t>(dims.size()));
  for (int64_t d : dims) put32(static_cast<uint32_t>(d));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::shared_ptr<U8ImageDataset> parse_mnist(const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels,
                                            const std::string& images_source, const std::string& labels_source,
                                            const std::string& name, int64_t num_classes, uint64_t max_bytes) {
  std::vector<uint8_t> img_raw, lab_raw;
  const std::vector<uint8_t>* img = &images;
  const std::vector<uint8_t>* lab = &labels;
  if (is_gzip(images.data(), images.size())) {
    img_raw = gunzip(images.data(), images.size(), images_source, max_bytes);
    img = &img_raw;
  }
  if (is_gzip(labels.data(), labels.size())) {
    lab_raw = gunzip(labels.data(), labels.size(), labels_source, max_bytes);
    lab = &lab_raw;
  }
  IdxArray im = parse_idx(img->data(), img->size(), 3, images_source);
  IdxArray lb = parse_idx(lab->data(), lab->size(), 1, labels_source);
  if (im.dims[0] != lb.dims[0]) {
    throw std::runtime_error(images_source + " and " + labels_source +
                             ": mismatched counts: " + std::to_string(im.dims[0]) + " images but " +
                             std::to_string(lb.dims[0]) + " labels (files from different splits?)");
  }
  std::vector<int64_t> lv(lb.data.size());
  for (size_t i = 0; i < lb.data.size(); ++i) {
    if (lb.data[i] >= num_classes) {
      throw std::runtime_error(labels_source + ": label " + std::to_string(lb.data[i]) + " of example " +
                               std::to_string(i) + " is out of range: expected 0.." + std::to_string(num_classes - 1));
    }
    lv[i] = lb.data[i];
  }
  std::vector<std::vector<std::string>> names(1);
  for (int64_t c = 0; c < num_classes; ++c) names[0].push_back(std::to_string(c));
  return std::make_shared<U8ImageDataset>(name, 1, im.dims[1], im.dims[2], std::move(im.data), std::move(lv),
                                          std::vector<int64_t>{num_classes}, std::move(names));
}

std::shared_ptr<U8ImageDataset> load_mnist_files(const std::string& images_path, const std::string& labels_path,
                                                 const std::string& name) {
  return parse_mnist(read_file(images_path), read_file(labels_path), images_path, labels_path, name);
}

MnistFiles find_mnist_files(const std::string& dir, Split split) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  auto find = [&](const std::string& kind, const std::string& idx) {
    for (const std::string& base :
         {prefix + "-" + kind + "-" + idx + "-ubyte", prefix + "-" + kind + "." + idx + "-ubyte"}) {
      for (const std::string& suffix : {std::string(), std::string(".gz")}) {
        const std::string p = join_path(dir, base + suffix);
        if (file_exists(p)) return p;
      }
    }
    return std::string();
  };
  return {find("images", "idx3"), find("labels", "idx1")};
}

std::shared_ptr<U8ImageDataset> load_mnist(const std::string& dir, Split split) {
  const MnistFiles f = find_mnist_files(dir, split);
  if (!f.found()) {
    const std::string prefix = split == Split::Train ? "train" : "t10k";
    throw std::runtime_error(dir + ": MNIST " + split_name(split) + " files not found: expected " + prefix +
                             "-images-idx3-ubyte[.gz] and " + prefix +
                             "-labels-idx1-ubyte[.gz] (run scripts/fetch-data.sh or pass --data-dir)");
  }
  return load_mnist_files(f.images, f.labels, std::string("mnist ") + split_name(split) + " (" + dir + ")");
}

void write_mnist(const U8ImageDataset& ds, const std::string& dir, Split split, bool gzip_files) {
  if (ds.channels() != 1) {
    throw std::invalid_argument("write_mnist(" + ds.info().name + "): idx images must have 1 channel, found " +
                                std::to_string(ds.channels()));
  }
  if (ds.num_label_sets() < 1)
    throw std::invalid_argument("write_mnist(" + ds.info().name + "): the dataset has no labels");
  for (int64_t i = 0; i < ds.size(); ++i) {
    if (ds.label(i) > 255) {
      throw std::invalid_argument("write_mnist(" + ds.info().name + "): label " + std::to_string(ds.label(i)) +
                                  " does not fit in an unsigned-byte idx file");
    }
  }
  make_dirs(dir);
  const int64_t n = ds.size(), h = ds.height(), w = ds.width();
  std::vector<uint8_t> pix(static_cast<size_t>(n * h * w)), lab(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::copy(ds.pixels(i), ds.pixels(i) + h * w, pix.begin() + i * h * w);
    lab[static_cast<size_t>(i)] = static_cast<uint8_t>(ds.label(i));
  }
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  std::vector<uint8_t> images = encode_idx({n, h, w}, pix);
  std::vector<uint8_t> labels = encode_idx({n}, lab);
  std::string suffix;
  if (gzip_files) {
    images = gzip(images.data(), images.size());
    labels = gzip(labels.data(), labels.size());
    suffix = ".gz";
  }
  write_bytes_atomic(join_path(dir, prefix + "-images-idx3-ubyte" + suffix), images);
  write_bytes_atomic(join_path(dir, prefix + "-labels-idx1-ubyte" + suffix), labels);
}

}  // namespace data
}  // namespace scalpel
