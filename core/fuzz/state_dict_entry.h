// The checkpoint reader's fuzz entry, shared by the libFuzzer target (fuzz_state_dict.cpp) and the
// corpus-replay test in make test. Byte 0 is a flag: when its low bit is set the entry rewrites
// both CRC-32 fields of the rest (the header CRC of a version-2 file and the trailing CRC) before
// parsing, so mutations reach the structural checks behind the checksums instead of stopping at
// "checksum mismatch". The rest is the file. Contract: StateDict::deserialize either throws
// std::runtime_error or returns a dictionary whose serialize -> deserialize -> serialize round
// trip is byte-identical; anything else (another exception, a crash, a sanitizer report, an
// allocation beyond the file's size) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/checksum.h"
#include "core/state_dict.h"

namespace scalpel {

// Header layout of format version 2 (core/state_dict.h): 40 bytes, then the header's CRC.
constexpr size_t kFuzzHeaderV2 = 40;

inline void fuzz_patch_checksums(std::string& file) {
  if (file.size() < 16 || std::memcmp(file.data(), "SCALPEL1", 8) != 0) return;
  uint32_t version;
  std::memcpy(&version, file.data() + 8, 4);
  if (version == 2 && file.size() >= kFuzzHeaderV2 + 4) {
    const uint32_t h = crc32_update(0, file.data(), kFuzzHeaderV2);
    std::memcpy(&file[kFuzzHeaderV2], &h, 4);
  }
  const size_t body = file.size() - 4;
  const uint32_t c = crc32_update(0, file.data(), body);
  std::memcpy(&file[body], &c, 4);
}

// Returns true when the input parsed.
inline bool fuzz_read_state_dict(const uint8_t* data, size_t size) {
  if (size < 1) return false;
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) fuzz_patch_checksums(file);
  StateDict sd;
  try {
    sd = StateDict::deserialize(file, "fuzz.ckpt");
  } catch (const std::runtime_error&) {
    return false;
  }
  const std::string once = sd.serialize();
  const std::string twice = StateDict::deserialize(once, "round-trip").serialize();
  if (once != twice) __builtin_trap();
  return true;
}

}  // namespace scalpel
