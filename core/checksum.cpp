#include "core/checksum.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>

namespace scalpel {

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  // data: n bytes, read once in pieces of at most 1 GiB (zlib takes a 32-bit length).
  const Bytef* p = static_cast<const Bytef*>(data);
  uLong c = crc;
  while (n > 0) {
    const size_t piece = std::min<size_t>(n, size_t{1} << 30);
    c = crc32(c, p, static_cast<uInt>(piece));
    p += piece;
    n -= piece;
  }
  return static_cast<uint32_t>(c);
}

std::string crc32_hex(uint32_t crc) {
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", static_cast<unsigned>(crc));
  return hex;
}

}  // namespace scalpel
