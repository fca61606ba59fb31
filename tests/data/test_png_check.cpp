// The PNG structure check (data/png_check.h): valid files from stb's writer pass (grey, RGB,
// every size class), and each kind of damage stb_image would not notice — a flipped bit in any
// chunk, a payload change with its chunk CRC recomputed (caught by inflate / Adler-32), a
// truncation at every length, trailing bytes, a header that disagrees with the data — is an error
// naming the file and the chunk; the image folder refuses such a file or skips it by name.
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "data/image_folder.h"
#include "data/png_check.h"
#include "temp_dir.h"

using namespace scalpel::data;
using scalpel::testing::error_of;
using scalpel::testing::TempDir;
using scalpel::testing::write_bytes;

namespace {

std::vector<uint8_t> encode_png(int h, int w, int c, int seed) {
  std::vector<uint8_t> px(static_cast<size_t>(h * w * c));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 7 + static_cast<size_t>(seed)) % 251);
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  EXPECT_TRUE(stbi_write_png_to_func(sink, &out, w, h, c, px.data(), w * c));
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

void put_be32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// Offset of the first chunk of `type`.
size_t chunk_offset(const std::vector<uint8_t>& png, const std::string& type) {
  size_t pos = 8;
  while (pos + 12 <= png.size()) {
    if (std::string(reinterpret_cast<const char*>(png.data() + pos + 4), 4) == type) return pos;
    pos += be32(png.data() + pos) + 12;
  }
  ADD_FAILURE() << "no chunk " << type;
  return 0;
}

// Recomputes the CRC of the chunk at `pos` (after its payload was edited on purpose).
void fix_crc(std::vector<uint8_t>& png, size_t pos) {
  const uint32_t len = be32(png.data() + pos);
  const uint32_t crc = static_cast<uint32_t>(crc32(0L, png.data() + pos + 4, len + 4));
  put_be32(png.data() + pos + 8 + len, crc);
}

std::string error_for(const std::vector<uint8_t>& png) {
  return error_of<std::runtime_error>([&] { verify_png(png.data(), png.size(), "img.png"); });
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST(PngCheck, ValidFilesPass) {
  for (int c : {1, 2, 3, 4}) {
    for (auto [h, w] : {std::pair<int, int>{1, 1}, {3, 5}, {32, 32}, {200, 300}}) {
      const std::vector<uint8_t> png = encode_png(h, w, c, h + w);
      EXPECT_TRUE(is_png(png.data(), png.size()));
      EXPECT_NO_THROW(verify_png(png.data(), png.size(), "ok.png")) << c << " channels, " << h << "x" << w;
    }
  }
  const std::string text = "not a png";
  EXPECT_FALSE(is_png(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

TEST(PngCheck, EveryFlippedBitIsCaughtAndNamesTheChunk) {
  const std::vector<uint8_t> png = encode_png(6, 7, 3, 1);
  for (size_t i = 0; i < png.size(); ++i) {
    for (int bit : {0, 5}) {
      std::vector<uint8_t> bad = png;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      const std::string msg = error_for(bad);
      ASSERT_TRUE(contains(msg, "img.png: corrupt PNG")) << "byte " << i << ": " << msg;
    }
  }
  std::vector<uint8_t> bad = png;
  bad[chunk_offset(png, "IDAT") + 8] ^= 0x40;
  const std::string msg = error_for(bad);
  EXPECT_TRUE(contains(msg, "chunk 'IDAT' CRC mismatch")) << msg;
  EXPECT_TRUE(contains(msg, "at byte " + std::to_string(chunk_offset(png, "IDAT")))) << msg;
}

TEST(PngCheck, ImageDataChangedWithAValidChunkCrcIsCaughtByInflate) {
  const std::vector<uint8_t> png = encode_png(16, 16, 1, 3);
  const size_t idat = chunk_offset(png, "IDAT");
  const uint32_t len = be32(png.data() + idat);
  ASSERT_GT(len, 6u);
  // The last four payload bytes are the zlib stream's Adler-32.
  std::vector<uint8_t> adler = png;
  adler[idat + 8 + len - 1] ^= 0x01;
  fix_crc(adler, idat);
  EXPECT_TRUE(contains(error_for(adler), "image data does not inflate")) << error_for(adler);
  // A valid stream of the wrong size: the header claims one row more than the data holds.
  std::vector<uint8_t> tall = png;
  const size_t ihdr = chunk_offset(png, "IHDR");
  put_be32(tall.data() + ihdr + 12, 17);
  fix_crc(tall, ihdr);
  const std::string msg = error_for(tall);
  EXPECT_TRUE(contains(msg, "image data holds")) << msg;
  EXPECT_TRUE(contains(msg, "the header implies")) << msg;
}

TEST(PngCheck, TruncationAtEveryLengthAndTrailingBytesAreCaught) {
  const std::vector<uint8_t> png = encode_png(5, 5, 3, 2);
  for (size_t n = 0; n < png.size(); ++n) {
    const std::vector<uint8_t> cut(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_TRUE(contains(error_for(cut), "corrupt PNG")) << n;
  }
  std::vector<uint8_t> extra = png;
  extra.push_back(0);
  EXPECT_TRUE(contains(error_for(extra), "data after the IEND chunk")) << error_for(extra);
}

TEST(PngCheck, HeaderFieldsAreChecked) {
  const std::vector<uint8_t> png = encode_png(4, 4, 3, 0);
  const size_t ihdr = chunk_offset(png, "IHDR");
  std::vector<uint8_t> depth = png;
  depth[ihdr + 8 + 8] = 3;  // bit depth 3 does not exist
  fix_crc(depth, ihdr);
  EXPECT_TRUE(contains(error_for(depth), "bit depth 3")) << error_for(depth);
  std::vector<uint8_t> zero = png;
  put_be32(zero.data() + ihdr + 8, 0);  // width 0
  fix_crc(zero, ihdr);
  EXPECT_TRUE(contains(error_for(zero), "image size 0x4")) << error_for(zero);
}

TEST(PngCheck, ImageFolderRefusesOrSkipsADamagedPngByName) {
  TempDir dir;
  const std::vector<uint8_t> good = encode_png(3, 3, 3, 0);
  std::vector<uint8_t> bad = good;
  bad[chunk_offset(good, "IDAT") + 9] ^= 0x08;
  write_bytes(dir / "a/good.png", good);
  write_bytes(dir / "a/flipped.png", bad);
  const std::string msg =
      error_of<std::runtime_error>([&] { ImageFolderDataset d(dir.path(), ImageFolderOptions().size(3, 3)); });
  EXPECT_TRUE(contains(msg, dir / "a/flipped.png")) << msg;
  EXPECT_TRUE(contains(msg, "CRC mismatch")) << msg;
  ImageFolderDataset d(dir.path(), ImageFolderOptions().size(3, 3).skip_undecodable(true).print_warnings(false));
  EXPECT_EQ(d.size(), 1);
  ASSERT_EQ(d.warnings().size(), 1u);
  EXPECT_TRUE(contains(d.warnings()[0], "flipped.png")) << d.warnings()[0];
}
