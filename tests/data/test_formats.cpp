// MNIST idx (raw and gzipped) and CIFAR-10 binary readers on small files written in the real
// formats, with exact pixel/label values, plus every malformed-file error.
#include <gtest/gtest.h>

#include "data/cifar.h"
#include "data/io.h"
#include "data/mnist.h"
#include "temp_dir.h"

using namespace scalpel;
using namespace scalpel::data;
using scalpel::testing::error_of;
using scalpel::testing::TempDir;
using scalpel::testing::write_bytes;

namespace {

void put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

// n images of h x w with pixel (i, y, x) = (i*31 + y*7 + x) % 256, written by hand (not by our encoder).
std::vector<uint8_t> idx_images(uint32_t n, uint32_t h, uint32_t w) {
  std::vector<uint8_t> v;
  put32(v, 0x00000803);
  put32(v, n);
  put32(v, h);
  put32(v, w);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x = 0; x < w; ++x) v.push_back(static_cast<uint8_t>((i * 31 + y * 7 + x) % 256));
  return v;
}

std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> v;
  put32(v, 0x00000801);
  put32(v, static_cast<uint32_t>(labels.size()));
  v.insert(v.end(), labels.begin(), labels.end());
  return v;
}

std::string mnist_error(const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels) {
  return error_of<std::runtime_error>([&] { parse_mnist(images, labels, "imgs.idx", "labels.idx"); });
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST(Mnist, ReadsRawAndGzippedFilesWithExactValues) {
  TempDir dir;
  const auto images = idx_images(3, 28, 28);
  const auto labels = idx_labels({7, 0, 9});
  write_bytes(dir / "train-images-idx3-ubyte", images);
  write_bytes(dir / "train-labels-idx1-ubyte.gz", gzip(labels.data(), labels.size()));  // mixed on purpose
  write_bytes(dir / "t10k-images-idx3-ubyte.gz", gzip(images.data(), images.size()));
  write_bytes(dir / "t10k-labels-idx1-ubyte", labels);
  for (Split split : {Split::Train, Split::Test}) {
    auto ds = load_mnist(dir.path(), split);
    ASSERT_EQ(ds->size(), 3);
    EXPECT_EQ(ds->info().input_shape, (Shape{1, 28, 28}));
    EXPECT_EQ(ds->info().num_classes, (std::vector<int64_t>{10}));
    const Example e = ds->get(2);
    EXPECT_EQ(e.labels, (std::vector<int64_t>{9}));
    EXPECT_FLOAT_EQ(e.input.at({0, 5, 11}), static_cast<float>((2 * 31 + 5 * 7 + 11) % 256) / 255.0f);
    EXPECT_EQ(ds->pixels(1)[27], static_cast<uint8_t>((31 + 27) % 256));
    EXPECT_EQ(ds->label(0), 7);
  }
}

TEST(Mnist, WriterRoundTripsThroughTheReader) {
  TempDir dir;
  auto src = parse_mnist(idx_images(5, 28, 28), idx_labels({1, 2, 3, 4, 5}), "a", "b");
  write_mnist(*src, dir.path(), Split::Train, /*gzip=*/true);
  ASSERT_TRUE(file_exists(dir / "train-images-idx3-ubyte.gz"));
  auto back = load_mnist(dir.path(), Split::Train);
  ASSERT_EQ(back->size(), 5);
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(std::vector<uint8_t>(back->pixels(i), back->pixels(i) + 784),
              std::vector<uint8_t>(src->pixels(i), src->pixels(i) + 784));
    EXPECT_EQ(back->label(i), src->label(i));
  }
}

TEST(Mnist, TruncatedFile) {
  auto images = idx_images(3, 28, 28);
  images.resize(images.size() - 100);
  const std::string msg = mnist_error(images, idx_labels({1, 2, 3}));
  EXPECT_TRUE(contains(msg, "imgs.idx: truncated idx file: header says 3 x 28 x 28 = 2352 bytes of images, found 2252"))
      << msg;
  EXPECT_TRUE(contains(mnist_error({0, 0, 8}, idx_labels({1})), "imgs.idx: truncated idx file: 3 bytes"))
      << "tiny file";
  std::vector<uint8_t> header_only = {0, 0, 8, 3, 0, 0, 0, 1};
  EXPECT_TRUE(contains(mnist_error(header_only, idx_labels({1})), "truncated idx header: 8 bytes, expected 16"));
}

TEST(Mnist, WrongMagicNumber) {
  const std::string swapped = mnist_error(idx_labels({1, 2, 3}), idx_images(3, 28, 28));
  EXPECT_TRUE(contains(
      swapped, "imgs.idx: wrong magic number: expected 0x00000803 (unsigned-byte images of rank 3), found 0x00000801"))
      << swapped;
  EXPECT_TRUE(contains(swapped, "swapped?")) << swapped;
  auto junk = idx_images(1, 28, 28);
  junk[0] = 'P';
  EXPECT_TRUE(contains(mnist_error(junk, idx_labels({1})), "found 0x50000803")) << mnist_error(junk, idx_labels({1}));
}

TEST(Mnist, MismatchedImageAndLabelCounts) {
  const std::string msg = mnist_error(idx_images(3, 28, 28), idx_labels({1, 2}));
  EXPECT_TRUE(contains(msg, "imgs.idx and labels.idx: mismatched counts: 3 images but 2 labels")) << msg;
}

TEST(Mnist, LabelOutOfRange) {
  const std::string msg = mnist_error(idx_images(3, 28, 28), idx_labels({1, 12, 3}));
  EXPECT_TRUE(contains(msg, "labels.idx: label 12 of example 1 is out of range: expected 0..9")) << msg;
}

TEST(Mnist, CorruptOrTruncatedGzip) {
  const auto images = idx_images(3, 28, 28);
  auto gz = gzip(images.data(), images.size());
  auto cut = gz;
  cut.resize(gz.size() / 2);
  EXPECT_TRUE(contains(mnist_error(cut, idx_labels({1, 2, 3})), "imgs.idx: truncated gzip stream"));
  auto bad = gz;
  for (size_t i = 12; i < 40 && i < bad.size(); ++i) bad[i] ^= 0x5A;
  const std::string msg = mnist_error(bad, idx_labels({1, 2, 3}));
  EXPECT_TRUE(contains(msg, "imgs.idx: ")) << msg;
  // A gzip bomb is refused by the size limit.
  const std::vector<uint8_t> zeros(1 << 20, 0);
  const auto bomb = gzip(zeros.data(), zeros.size());
  const std::string b = error_of<std::runtime_error>([&] { gunzip(bomb.data(), bomb.size(), "bomb.gz", 1000); });
  EXPECT_TRUE(contains(b, "bomb.gz: gzip content exceeds the limit of 1000")) << b;
}

TEST(Mnist, MissingDirectoryNamesTheExpectedFiles) {
  TempDir dir;
  const std::string msg = error_of<std::runtime_error>([&] { load_mnist(dir / "nowhere", Split::Test); });
  EXPECT_TRUE(contains(msg, "nowhere: MNIST test files not found: expected t10k-images-idx3-ubyte[.gz]")) << msg;
  EXPECT_TRUE(contains(msg, "scripts/fetch-data.sh")) << msg;
}

namespace {
// n CIFAR records; pixel k of record i = (i*13 + k) % 256, label = labels[i].
std::vector<uint8_t> cifar_bytes(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> v;
  for (size_t i = 0; i < labels.size(); ++i) {
    v.push_back(labels[i]);
    for (int k = 0; k < 3072; ++k) v.push_back(static_cast<uint8_t>((i * 13 + static_cast<size_t>(k)) % 256));
  }
  return v;
}
}  // namespace

TEST(Cifar, ReadsTrainAndTestBatchesWithExactValues) {
  TempDir dir;
  for (int b = 1; b <= 5; ++b)
    write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_bytes({static_cast<uint8_t>(b), 0}));
  write_bytes(dir / "test_batch.bin", cifar_bytes({9, 8, 7}));
  auto train = load_cifar10(dir.path(), Split::Train);
  ASSERT_EQ(train->size(), 10);
  EXPECT_EQ(train->label(4), 3);  // first record of data_batch_3
  EXPECT_EQ(train->info().class_names[0][3], "cat");
  auto test = load_cifar10(dir.path(), Split::Test);
  ASSERT_EQ(test->size(), 3);
  const Example e = test->get(1);
  EXPECT_EQ(e.labels, (std::vector<int64_t>{8}));
  EXPECT_EQ(e.input.shape(), (Shape{3, 32, 32}));
  // Channel planes: red bytes 0..1023, green 1024..2047, blue 2048..3071; row-major inside.
  EXPECT_FLOAT_EQ(e.input.at({0, 0, 5}), static_cast<float>((13 + 5) % 256) / 255.0f);
  EXPECT_FLOAT_EQ(e.input.at({1, 2, 3}), static_cast<float>((13 + 1024 + 2 * 32 + 3) % 256) / 255.0f);
  EXPECT_FLOAT_EQ(e.input.at({2, 31, 31}), static_cast<float>((13 + 3071) % 256) / 255.0f);
}

TEST(Cifar, SizeNotAMultipleOf3073) {
  auto bytes = cifar_bytes({1, 2});
  bytes.resize(bytes.size() - 5);
  std::vector<uint8_t> px;
  std::vector<int64_t> lab;
  const std::string msg =
      error_of<std::runtime_error>([&] { parse_cifar10_records(bytes.data(), bytes.size(), "b.bin", px, lab); });
  EXPECT_TRUE(contains(msg, "b.bin: size 6141 bytes is not a multiple of 3073")) << msg;
  EXPECT_TRUE(contains(msg, "found 1 whole records and 3068 stray bytes")) << msg;
  const std::string empty = error_of<std::runtime_error>([&] { parse_cifar10_records(nullptr, 0, "e.bin", px, lab); });
  EXPECT_TRUE(contains(empty, "e.bin: empty CIFAR-10 file")) << empty;
}

TEST(Cifar, LabelOutOfRange) {
  const auto bytes = cifar_bytes({1, 2, 57});
  const std::string msg = error_of<std::runtime_error>([&] { parse_cifar10({bytes}, {"x.bin"}); });
  EXPECT_TRUE(contains(msg, "x.bin: record 2 has label 57, expected 0..9")) << msg;
}

TEST(Cifar, MissingFileIsNamed) {
  TempDir dir;
  write_bytes(dir / "data_batch_1.bin", cifar_bytes({1}));
  const std::string msg = error_of<std::runtime_error>([&] { load_cifar10(dir.path(), Split::Train); });
  EXPECT_TRUE(contains(msg, "data_batch_2.bin: CIFAR-10 train file not found")) << msg;
  EXPECT_TRUE(find_cifar10_files(dir.path(), Split::Train).empty());
}

TEST(Cifar, WriterRoundTripsThroughTheReader) {
  TempDir dir;
  auto src = parse_cifar10({cifar_bytes({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1})}, {"mem"});
  write_cifar10(*src, dir.path(), Split::Train);
  auto back = load_cifar10(dir.path(), Split::Train);
  ASSERT_EQ(back->size(), 12);
  for (int64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(back->label(i), src->label(i));
    EXPECT_EQ(std::vector<uint8_t>(back->pixels(i), back->pixels(i) + 3072),
              std::vector<uint8_t>(src->pixels(i), src->pixels(i) + 3072));
  }
  const std::string msg = error_of<std::invalid_argument>([&] {
    write_cifar10(*src, dir / "t", Split::Train);
    (void)0;
    write_cifar10(*parse_cifar10({cifar_bytes({1, 2})}, {"m"}), dir / "u", Split::Train);
  });
  EXPECT_TRUE(contains(msg, "a train split needs at least 5 images (one per file), found 2")) << msg;
}
