// The image decoder's fuzz entry, shared by the libFuzzer target (fuzz_image.cpp) and the
// corpus-replay test in make test. Byte 0 picks the options (bit 0: 1 or 3 channels; bit 1: Resize
// or CenterCrop; bits 2-5: output height 1..16), byte 1 the output width (1..16); the rest is the
// image file, decoded by decode_image: PNG structure check (data/png_check.h), stb_image, fit.
// Contract: a std::runtime_error naming the source, or exactly channels x height x width bytes.
// Images over 2^16 pixels are skipped (decoding them is slow, not wrong; the library's own limit
// is kMaxImagePixels).
#pragma once

#include <stb/stb_image.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/image_folder.h"

namespace scalpel {
namespace data {

// Returns true when the input decoded.
inline bool fuzz_decode_image(const uint8_t* data, size_t size) {
  if (size < 3) return false;
  ImageFolderOptions opt;
  opt.channels((data[0] & 1) ? 3 : 1)
      .mode((data[0] & 2) ? FitMode::CenterCrop : FitMode::Resize)
      .size(1 + ((data[0] >> 2) & 15), 1 + data[1] % 16);
  const uint8_t* file = data + 2;
  const size_t n = size - 2;
  int w = 0, h = 0, comp = 0;
  if (stbi_info_from_memory(file, static_cast<int>(n), &w, &h, &comp) &&
      std::abs(int64_t{w}) * std::abs(int64_t{h}) > (int64_t{1} << 16)) {
    return false;
  }
  std::vector<uint8_t> out;
  try {
    out = decode_image(file, n, "fuzz.img", opt);
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find("fuzz.img") == std::string::npos) __builtin_trap();  // must name the file
    return false;
  }
  if (out.size() != static_cast<size_t>(opt.channels_ * opt.height_ * opt.width_)) __builtin_trap();
  return true;
}

}  // namespace data
}  // namespace scalpel
