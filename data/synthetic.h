// Built-in synthetic datasets: the data every experiment runs on when no real data set has been
// downloaded. Each is generated in memory, deterministically from its seed (independently of the
// thread count: example i is drawn from its own Generator(mix_seed(split seed, i))), in parallel
// with parallel_for. Pictures and the exact recipes are in the README ("Data").
//
// - synthetic-digits: 28x28 grayscale digits 0-9 in MNIST's format (white strokes on black),
//   rendered from a built-in stroke font (polylines and elliptic arcs, with style variants such as
//   the crossed 7 and the open 4). Each digit gets a random affine map (rotation, anisotropic
//   scale, shear, translation), a smooth random warp, a random stroke width, a blurred edge,
//   intensity and noise, and sometimes a stray mark. Default 60,000 train / 10,000 test.
// - synthetic-textures: 32x32 RGB, 10 classes of procedural textures: horizontal, vertical and
//   diagonal stripes, checks, blobs, rings, smooth gradients, dot lattices, value-noise clouds and
//   wavy stripes, each with random frequency, phase and orientation, two random colours,
//   contrast and brightness jitter, a faint overlay of another class's pattern, and noise.
//   Default 50,000 train / 10,000 test (CIFAR-10's sizes).
// - synthetic-composite: the Cifar10Mnist construction (data/composite.h) applied to
//   synthetic-textures and synthetic-digits of the same split (labels: texture, digit).
// - synthetic-text: two byte corpora over one shared alphabet from two different generators: a
//   large "generic" one (default 10 MiB) and a small "specific" one (default 100 KiB) with
//   different word frequencies, successor statistics, sentence lengths and punctuation.
//
// Labels are balanced: example i gets class perm[i] % 10 for a seeded permutation perm, so every
// class has floor(N/10) or ceil(N/10) examples and label order is unrelated across datasets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/composite.h"
#include "data/dataset.h"
#include "data/text.h"

namespace scalpel {
namespace data {

struct SyntheticOptions {
  uint64_t seed_ = 0;
  int64_t size_ = -1;  // examples in the split; -1 = the default for the split

  SyntheticOptions& seed(uint64_t v) {
    seed_ = v;
    return *this;
  }
  SyntheticOptions& size(int64_t v) {
    size_ = v;
    return *this;
  }
};

extern const std::vector<std::string> kTextureClasses;

// Renders one synthetic digit into out[28*28] (bytes) from the generator; exposed for tests.
void render_digit(int64_t digit, Generator& gen, uint8_t* out);
// Renders one texture of class `cls` into out[3*32*32] (bytes, channel-major).
void render_texture(int64_t cls, Generator& gen, uint8_t* out);

std::shared_ptr<U8ImageDataset> make_synthetic_digits(Split split,
                                                      const SyntheticOptions& options = SyntheticOptions());
std::shared_ptr<U8ImageDataset> make_synthetic_textures(Split split,
                                                        const SyntheticOptions& options = SyntheticOptions());
std::shared_ptr<CompositeDataset> make_synthetic_composite(Split split,
                                                           const SyntheticOptions& options = SyntheticOptions());

struct SyntheticTextOptions {
  uint64_t seed_ = 0;
  int64_t generic_bytes_ = int64_t{10} << 20;    // 10 MiB
  int64_t specific_bytes_ = int64_t{100} << 10;  // 100 KiB

  SyntheticTextOptions& seed(uint64_t v) {
    seed_ = v;
    return *this;
  }
  SyntheticTextOptions& generic_bytes(int64_t v) {
    generic_bytes_ = v;
    return *this;
  }
  SyntheticTextOptions& specific_bytes(int64_t v) {
    specific_bytes_ = v;
    return *this;
  }
};

// The shared alphabet of synthetic-text (every byte either corpus can contain).
const std::string& synthetic_text_alphabet();

struct TextCorpora {
  ByteCorpus generic;   // large, main-task corpus
  ByteCorpus specific;  // small, auxiliary / target corpus
};
TextCorpora make_synthetic_text(const SyntheticTextOptions& options = SyntheticTextOptions());

}  // namespace data
}  // namespace scalpel
