// libFuzzer target for the MNIST idx and CIFAR-10 binary parsers (raw and gzipped inputs).
//
// The first input byte picks the parser; the rest is the file content:
//   0: idx images + labels  (the content is cut in two at a position given by bytes 1-2)
//   1: idx of rank 1 or 3 alone (byte 1 picks the rank)
//   2: CIFAR-10 records
//   3: gunzip with a small output limit
// Every malformed input must end in a std::runtime_error / std::invalid_argument, never a crash,
// a hang, a sanitizer report or a huge allocation. Build: CC=clang CXX=clang++ cmake
// -DSCALPEL_FUZZ=ON, or `make fuzz FUZZ_SECONDS=600`.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "data/cifar.h"
#include "data/io.h"
#include "data/mnist.h"

using namespace scalpel::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 4;
  const uint8_t* p = data + 1;
  const size_t n = size - 1;
  constexpr uint64_t kLimit = uint64_t{1} << 24;  // 16 MiB of decompressed data at most
  try {
    switch (mode) {
      case 0: {
        if (n < 2) return 0;
        const size_t cut = std::min<size_t>((static_cast<size_t>(p[0]) << 8 | p[1]), n - 2);
        std::vector<uint8_t> images(p + 2, p + 2 + cut), labels(p + 2 + cut, p + n);
        auto ds = parse_mnist(images, labels, "images", "labels", "fuzz", 10, kLimit);
        // Touch every example through the public API.
        std::vector<float> x(static_cast<size_t>(ds->channels() * ds->height() * ds->width()));
        int64_t label = 0;
        for (int64_t i = 0; i < ds->size(); ++i) ds->read(i, x.data(), &label);
        break;
      }
      case 1: {
        if (n < 1) return 0;
        const IdxArray a = parse_idx(p + 1, n - 1, (p[0] & 1) ? 3 : 1, "idx");
        size_t count = 1;
        for (int64_t d : a.dims) count *= static_cast<size_t>(d);
        if (count != a.data.size()) __builtin_trap();  // the parser's contract
        break;
      }
      case 2: {
        std::vector<std::vector<uint8_t>> files = {std::vector<uint8_t>(p, p + n)};
        auto ds = parse_cifar10(files, {"cifar"});
        std::vector<float> x(3072);
        int64_t label = 0;
        for (int64_t i = 0; i < ds->size(); ++i) {
          ds->read(i, x.data(), &label);
          if (label < 0 || label > 9) __builtin_trap();
        }
        break;
      }
      case 3: {
        const std::vector<uint8_t> out = gunzip(p, n, "gz", kLimit);
        if (out.size() > kLimit) __builtin_trap();
        break;
      }
    }
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
