// File helpers shared by the data loaders and exporters: whole-file reads, gzip detection and
// decompression (zlib), atomic writes, and directory listing.
//
// Every error is a std::runtime_error whose message starts with the file it concerns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace scalpel {
namespace data {

// Largest decompressed size accepted by default (guards against gzip bombs): 2 GiB.
constexpr uint64_t kMaxDecompressedBytes = uint64_t{2} << 30;

// The whole file as bytes. Throws "<path>: cannot open (...)" when missing or unreadable.
std::vector<uint8_t> read_file(const std::string& path);
// True when the buffer starts with the gzip magic bytes 1f 8b.
bool is_gzip(const uint8_t* data, size_t size);
// Decompresses a gzip stream (concatenated members allowed). Throws naming `source` for a
// truncated or corrupt stream, or one that would exceed `max_bytes`.
std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& source,
                            uint64_t max_bytes = kMaxDecompressedBytes);
// Compresses with gzip (level 6 by default).
std::vector<uint8_t> gzip(const uint8_t* data, size_t size, int level = 6);
// read_file, then gunzip when the content is gzip (auto-detected from the magic, not the name).
std::vector<uint8_t> read_maybe_gzip(const std::string& path, uint64_t max_bytes = kMaxDecompressedBytes);

// Atomic write: temp file in the same folder + fsync + rename.
void write_bytes_atomic(const std::string& path, const std::vector<uint8_t>& bytes);
void write_text_atomic(const std::string& path, const std::string& text);

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
// Creates the directory and its parents; throws naming the path on failure.
void make_dirs(const std::string& path);
// Names (not paths) of the entries of `dir`, sorted bytewise; hidden entries (".*") skipped.
// `want_dirs` selects sub-directories, otherwise regular files.
std::vector<std::string> list_dir(const std::string& dir, bool want_dirs);
std::string join_path(const std::string& a, const std::string& b);

}  // namespace data
}  // namespace scalpel
