#include "data/io.h"

#include <dirent.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "core/state_dict.h"

namespace scalpel {
namespace data {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  in.seekg(0, std::ios::end);
  const std::streamoff n = in.tellg();
  if (n < 0) throw std::runtime_error(path + ": cannot determine the file size");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  if (n > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), n)) {
    throw std::runtime_error(path + ": read failed after " + std::to_string(in.gcount()) + " of " + std::to_string(n) +
                             " bytes");
  }
  return bytes;
}

bool is_gzip(const uint8_t* data, size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& source, uint64_t max_bytes) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error(source + ": cannot initialise zlib");
  std::vector<uint8_t> out;
  const size_t chunk = 1 << 16;
  zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(data));
  zs.avail_in = static_cast<uInt>(std::min<size_t>(size, UINT32_MAX));
  size_t fed = zs.avail_in;
  int ret = Z_OK;
  for (;;) {
    if (out.size() >= max_bytes) {
      inflateEnd(&zs);
      throw std::runtime_error(source + ": gzip content exceeds the limit of " + std::to_string(max_bytes) +
                               " decompressed bytes (corrupt or not a data file)");
    }
    const size_t before = out.size();
    const size_t room = static_cast<size_t>(std::min<uint64_t>(chunk, max_bytes - before));
    out.resize(before + room);
    zs.next_out = out.data() + before;
    zs.avail_out = static_cast<uInt>(room);
    ret = inflate(&zs, Z_NO_FLUSH);
    out.resize(before + (room - zs.avail_out));
    if (zs.avail_in == 0 && fed < size) {
      const size_t more = std::min<size_t>(size - fed, UINT32_MAX);
      zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(data + fed));
      zs.avail_in = static_cast<uInt>(more);
      fed += more;
    }
    if (ret == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Another gzip member follows (as `cat a.gz b.gz` makes); padding zeros end the stream.
      if (std::all_of(zs.next_in, zs.next_in + zs.avail_in, [](Bytef b) { return b == 0; }) && fed == size) break;
      if (inflateReset(&zs) != Z_OK) break;
      continue;
    }
    if (ret == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      throw std::runtime_error(source + ": truncated gzip stream (expected more compressed data after " +
                               std::to_string(size) + " bytes, decompressed " + std::to_string(out.size()) +
                               " so far)");
    }
    if (ret != Z_OK && ret != Z_BUF_ERROR) {
      const std::string msg = zs.msg ? zs.msg : "error " + std::to_string(ret);
      inflateEnd(&zs);
      throw std::runtime_error(source + ": corrupt gzip stream (" + msg + ")");
    }
  }
  inflateEnd(&zs);
  return out;
}

std::vector<uint8_t> gzip(const uint8_t* data, size_t size, int level) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip: cannot initialise zlib");
  }
  std::vector<uint8_t> out(deflateBound(&zs, static_cast<uLong>(size)) + 64);
  zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(data));
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int ret = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (ret != Z_STREAM_END) throw std::runtime_error("gzip: compression failed (" + std::to_string(ret) + ")");
  out.resize(zs.total_out);
  return out;
}

std::vector<uint8_t> read_maybe_gzip(const std::string& path, uint64_t max_bytes) {
  std::vector<uint8_t> raw = read_file(path);
  if (!is_gzip(raw.data(), raw.size())) return raw;
  return gunzip(raw.data(), raw.size(), path, max_bytes);
}

void write_bytes_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

void write_text_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_dirs(const std::string& path) {
  if (path.empty() || dir_exists(path)) return;
  const size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_dirs(path.substr(0, slash));
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    throw std::runtime_error(path + ": cannot create directory (" + std::strerror(errno) + ")");
  }
}

std::vector<std::string> list_dir(const std::string& dir, bool want_dirs) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw std::runtime_error(dir + ": cannot open directory (" + std::strerror(errno) + ")");
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    const std::string full = join_path(dir, name);
    if (want_dirs ? dir_exists(full) : file_exists(full)) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

}  // namespace data
}  // namespace scalpel
