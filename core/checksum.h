// CRC-32 checksums (zlib's polynomial, as in gzip and PNG) over buffers of any size, and their
// 8-digit hex form. Checkpoints carry one, data-set descriptions in config.json / summary.json
// record one per split or corpus, so two runs can be shown to have read the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace scalpel {

// CRC-32 of `n` bytes at `data`, continuing from `crc` (0 starts a new checksum). Buffers larger
// than zlib's 32-bit length are fed in pieces.
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

// "%08x" of `crc`, e.g. "0a1b2c3d".
std::string crc32_hex(uint32_t crc);

}  // namespace scalpel
