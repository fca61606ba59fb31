#include "data/png_check.h"

#include <zlib.h>

#include <array>
#include <cstring>
#include <stdexcept>

#include "core/checksum.h"

namespace scalpel {
namespace data {

namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct Header {
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
};

[[noreturn]] void fail(const std::string& source, const std::string& what, size_t offset) {
  throw std::runtime_error(source + ": corrupt PNG: " + what + " (at byte " + std::to_string(offset) + ")");
}

int channels_of(int color_type) {
  switch (color_type) {
    case 0:
      return 1;  // grey
    case 2:
      return 3;  // RGB
    case 3:
      return 1;  // palette index
    case 4:
      return 2;  // grey + alpha
    case 6:
      return 4;  // RGBA
    default:
      return 0;
  }
}

bool depth_allowed(int color_type, int depth) {
  switch (color_type) {
    case 0:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
      return depth == 8 || depth == 16;
    default:
      return false;
  }
}

// Bytes of the filtered image data: per row of each pass, one filter byte + the packed row.
uint64_t expected_image_bytes(const Header& h) {
  const uint64_t bits = static_cast<uint64_t>(channels_of(h.color_type)) * static_cast<uint64_t>(h.bit_depth);
  auto pass_bytes = [&](uint64_t w, uint64_t rows) {
    return w == 0 || rows == 0 ? 0 : rows * (1 + (w * bits + 7) / 8);
  };
  if (h.interlace == 0) return pass_bytes(h.width, h.height);
  // Adam7: x0, y0, dx, dy of the seven passes.
  static constexpr std::array<std::array<uint64_t, 4>, 7> kPasses{
      {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}};
  uint64_t total = 0;
  for (const auto& p : kPasses) {
    const uint64_t w = h.width > p[0] ? (h.width - p[0] + p[2] - 1) / p[2] : 0;
    const uint64_t rows = h.height > p[1] ? (h.height - p[1] + p[3] - 1) / p[3] : 0;
    total += pass_bytes(w, rows);
  }
  return total;
}

// Streams the IDAT chunks through inflate into a scratch buffer, counting the output bytes;
// zlib checks the stream's Adler-32 at its end.
class IdatStream {
 public:
  explicit IdatStream(const std::string& source) : source_(source) {
    std::memset(&z_, 0, sizeof(z_));
    if (inflateInit(&z_) != Z_OK) throw std::runtime_error(source + ": PNG check: zlib inflateInit failed");
  }
  ~IdatStream() { inflateEnd(&z_); }
  IdatStream(const IdatStream&) = delete;
  IdatStream& operator=(const IdatStream&) = delete;

  // Feeds one IDAT payload; `limit` bounds the output (the header's expected size).
  void feed(const uint8_t* p, size_t n, size_t offset, uint64_t limit) {
    z_.next_in = const_cast<Bytef*>(p);
    z_.avail_in = static_cast<uInt>(n);
    while (z_.avail_in > 0 && !ended_) {
      z_.next_out = scratch_.data();
      z_.avail_out = static_cast<uInt>(scratch_.size());
      const int rc = inflate(&z_, Z_NO_FLUSH);
      produced_ += scratch_.size() - z_.avail_out;
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc == Z_DATA_ERROR) {
        fail(source_,
             std::string("image data does not inflate (") + (z_.msg ? z_.msg : "zlib data error") +
                 "; a bad Adler-32 checksum is reported here too)",
             offset);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        fail(source_, "image data does not inflate (zlib error " + std::to_string(rc) + ")", offset);
      }
      if (produced_ > limit) {
        fail(source_, "image data holds more bytes than the header's " + std::to_string(limit), offset);
      }
      if (rc == Z_BUF_ERROR && z_.avail_out != 0) break;  // needs more input
    }
    if (ended_ && z_.avail_in > 0) fail(source_, "bytes after the end of the image data stream", offset);
  }
  bool ended() const { return ended_; }
  uint64_t produced() const { return produced_; }

 private:
  const std::string& source_;
  z_stream z_;
  std::array<Bytef, 1 << 16> scratch_{};
  uint64_t produced_ = 0;
  bool ended_ = false;
};

}  // namespace

bool is_png(const uint8_t* bytes, size_t size) {
  return size >= sizeof(kSignature) && std::memcmp(bytes, kSignature, sizeof(kSignature)) == 0;
}

void verify_png(const uint8_t* bytes, size_t size, const std::string& source) {
  // bytes: the whole file, [size].
  if (!is_png(bytes, size)) fail(source, "missing the 8-byte PNG signature", 0);
  Header h;
  bool seen_header = false, seen_end = false, idat_open = false, idat_closed = false;
  uint64_t expected = 0;
  IdatStream idat(source);
  size_t pos = sizeof(kSignature);
  while (pos < size) {
    if (seen_end) fail(source, "data after the IEND chunk", pos);
    if (size - pos < 12) fail(source, "truncated chunk header (" + std::to_string(size - pos) + " bytes left)", pos);
    const uint32_t length = be32(bytes + pos);
    const uint8_t* type = bytes + pos + 4;
    std::string name(reinterpret_cast<const char*>(type), 4);
    for (char& c : name) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) c = '?';
    }
    if (length > 0x7fffffffu || length > size - pos - 12) {
      fail(source,
           "chunk '" + name + "' claims " + std::to_string(length) + " bytes, the file has " +
               std::to_string(size - pos - 12) + " left (truncated file?)",
           pos);
    }
    const uint8_t* payload = type + 4;
    const uint32_t stored = be32(payload + length);
    const uint32_t crc = crc32_update(0, type, size_t{length} + 4);
    if (stored != crc) {
      fail(source,
           "chunk '" + name + "' CRC mismatch (stored " + crc32_hex(stored) + ", computed " + crc32_hex(crc) + ")",
           pos);
    }
    const bool is_idat = name == "IDAT";
    if (!seen_header && name != "IHDR") fail(source, "first chunk is '" + name + "', expected 'IHDR'", pos);
    if (name == "IHDR") {
      if (seen_header) fail(source, "second IHDR chunk", pos);
      if (length != 13) fail(source, "IHDR has " + std::to_string(length) + " bytes, expected 13", pos);
      seen_header = true;
      h.width = be32(payload);
      h.height = be32(payload + 4);
      h.bit_depth = payload[8];
      h.color_type = payload[9];
      h.interlace = payload[12];
      if (h.width == 0 || h.height == 0 || h.width > 0x7fffffffu || h.height > 0x7fffffffu) {
        fail(source, "image size " + std::to_string(h.width) + "x" + std::to_string(h.height) + " is invalid", pos);
      }
      if (!depth_allowed(h.color_type, h.bit_depth)) {
        fail(source,
             "colour type " + std::to_string(h.color_type) + " with bit depth " + std::to_string(h.bit_depth) +
                 " is not a PNG format",
             pos);
      }
      if (payload[10] != 0 || payload[11] != 0 || h.interlace > 1) {
        fail(source, "unknown compression, filter or interlace method", pos);
      }
      expected = expected_image_bytes(h);
    } else if (is_idat) {
      if (idat_closed) fail(source, "IDAT chunks are not consecutive", pos);
      idat_open = true;
      idat.feed(payload, length, pos, expected);
    } else if (name == "IEND") {
      seen_end = true;
    }
    if (idat_open && !is_idat) idat_closed = true;
    pos += size_t{length} + 12;
  }
  if (!seen_end) fail(source, "no IEND chunk (truncated file?)", size);
  if (!idat_open) fail(source, "no IDAT chunk (no image data)", size);
  if (!idat.ended()) fail(source, "image data stream ends early (truncated file?)", size);
  if (idat.produced() != expected) {
    fail(source,
         "image data holds " + std::to_string(idat.produced()) + " bytes, the header implies " +
             std::to_string(expected),
         size);
  }
}

}  // namespace data
}  // namespace scalpel
