// Structural check of a PNG file before it is decoded. stb_image skips chunk CRCs and the zlib
// Adler-32 of the image data, so a bit-flipped or truncated PNG can decode to wrong pixels
// without any error; the image-folder loader runs verify_png first, and a damaged file is an
// error naming the file, the chunk and its byte offset (or a skipped file with that reason, under
// ImageFolderOptions::skip_undecodable).
//
// Checked: the 8-byte signature; every chunk's length (within the file) and CRC-32; IHDR first
// with a valid size, bit depth, colour type, compression, filter and interlace method; at least
// one IDAT, consecutive; IEND last with nothing after it; the concatenated IDAT stream inflates
// without error, its Adler-32 matches, and it holds exactly the bytes the header implies
// (filter byte + row bytes for every row of every Adam7 pass).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace scalpel {
namespace data {

// True when `bytes` start with the PNG signature.
bool is_png(const uint8_t* bytes, size_t size);

// Throws std::runtime_error "<source>: corrupt PNG: <what> (<where>)" when the checks above fail.
void verify_png(const uint8_t* bytes, size_t size, const std::string& source);

}  // namespace data
}  // namespace scalpel
