#include "core/state_dict.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/checksum.h"
#include "core/kernels/loops.h"

namespace scalpel {

namespace {
constexpr char kMagic[8] = {'S', 'C', 'A', 'L', 'P', 'E', 'L', '1'};
constexpr uint32_t kVersion = 2;                 // written; versions 1 and 2 are read
constexpr size_t kHeaderV1 = 8 + 4 + 4 + 8 + 8;  // magic, version, flags, counts
constexpr size_t kHeaderV2 = kHeaderV1 + 8 + 4;  // + i64 step + u32 header CRC

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void put_name(std::string& out, const std::string& s) {
  put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

class Reader {
 public:
  Reader(const std::string& bytes, size_t limit, const std::string& source)
      : bytes_(bytes), limit_(limit), source_(source) {}

  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string(const char* what) {
    const uint32_t n = get<uint32_t>(what);
    need(n, what);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void get_floats(float* dst, int64_t n, const std::string& what) {
    need(static_cast<size_t>(n) * sizeof(float), what.c_str());
    if (n) std::memcpy(dst, bytes_.data() + pos_, static_cast<size_t>(n) * sizeof(float));
    pos_ += static_cast<size_t>(n) * sizeof(float);
  }
  size_t pos() const { return pos_; }
  void skip(size_t n) { pos_ += n; }
  // Throws unless n more bytes remain (checked before allocating what they will fill).
  void need(size_t n, const char* what) {
    if (pos_ + n > limit_ || pos_ + n < pos_) {
      throw std::runtime_error("checkpoint " + source_ + ": truncated or corrupted while reading " + what +
                               " at byte " + std::to_string(pos_) + " (needs " + std::to_string(n) + " more bytes, " +
                               std::to_string(limit_ - pos_) + " left)");
    }
  }

 private:
  const std::string& bytes_;
  size_t limit_;
  std::string source_;
  size_t pos_ = 0;
};
}  // namespace

void StateDict::set_tensor(const std::string& name, const Tensor& t) {
  if (!t.defined()) throw std::invalid_argument("StateDict: tensor '" + name + "' is undefined");
  if (!tensors_.count(name)) order_.push_back(name);
  tensors_[name] = t;
}

bool StateDict::has_tensor(const std::string& name) const { return tensors_.count(name) > 0; }

const Tensor& StateDict::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw std::invalid_argument("StateDict: missing tensor '" + name + "'");
  return it->second;
}

void StateDict::set_int(const std::string& name, int64_t v) {
  Scalar s;
  s.kind = 0;
  s.i = v;
  scalars_[name] = s;
}

void StateDict::set_double(const std::string& name, double v) {
  Scalar s;
  s.kind = 1;
  s.d = v;
  scalars_[name] = s;
}

void StateDict::set_string(const std::string& name, const std::string& v) {
  Scalar s;
  s.kind = 2;
  s.s = v;
  scalars_[name] = s;
}

bool StateDict::has_scalar(const std::string& name) const { return scalars_.count(name) > 0; }

namespace {
const char* kind_name(uint8_t k) { return k == 0 ? "int" : k == 1 ? "double" : "string"; }
}  // namespace

int64_t StateDict::get_int(const std::string& name) const {
  auto it = scalars_.find(name);
  if (it == scalars_.end()) throw std::invalid_argument("StateDict: missing scalar '" + name + "'");
  if (it->second.kind != 0) {
    throw std::invalid_argument("StateDict: scalar '" + name + "' is a " + kind_name(it->second.kind) +
                                ", expected an int");
  }
  return it->second.i;
}

double StateDict::get_double(const std::string& name) const {
  auto it = scalars_.find(name);
  if (it == scalars_.end()) throw std::invalid_argument("StateDict: missing scalar '" + name + "'");
  if (it->second.kind != 1) {
    throw std::invalid_argument("StateDict: scalar '" + name + "' is a " + kind_name(it->second.kind) +
                                ", expected a double");
  }
  return it->second.d;
}

const std::string& StateDict::get_string(const std::string& name) const {
  auto it = scalars_.find(name);
  if (it == scalars_.end()) throw std::invalid_argument("StateDict: missing scalar '" + name + "'");
  if (it->second.kind != 2) {
    throw std::invalid_argument("StateDict: scalar '" + name + "' is a " + kind_name(it->second.kind) +
                                ", expected a string");
  }
  return it->second.s;
}

void StateDict::merge(const StateDict& other, const std::string& prefix) {
  const std::string p = prefix.empty() ? "" : prefix + ".";
  for (const std::string& n : other.order_) set_tensor(p + n, other.tensors_.at(n));
  for (const auto& [n, s] : other.scalars_) scalars_[p + n] = s;
}

StateDict StateDict::sub(const std::string& prefix) const {
  const std::string p = prefix + ".";
  StateDict out;
  for (const std::string& n : order_) {
    if (n.compare(0, p.size(), p) == 0) out.set_tensor(n.substr(p.size()), tensors_.at(n));
  }
  for (const auto& [n, s] : scalars_) {
    if (n.compare(0, p.size(), p) == 0) out.scalars_[n.substr(p.size())] = s;
  }
  return out;
}

std::string StateDict::serialize() const {
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kVersion);
  put<uint32_t>(out, 0);
  put<uint64_t>(out, order_.size());
  put<uint64_t>(out, scalars_.size());
  put<int64_t>(out, checkpoint_step());
  put<uint32_t>(out, crc32_update(0, out.data(), out.size()));
  for (const std::string& n : order_) {
    const Tensor c = tensors_.at(n).detach().contiguous();
    put_name(out, n);
    put<uint32_t>(out, static_cast<uint32_t>(c.dim()));
    for (int64_t d : c.shape()) put<int64_t>(out, d);
    out.append(reinterpret_cast<const char*>(c.data()), static_cast<size_t>(c.numel()) * sizeof(float));
  }
  for (const auto& [n, s] : scalars_) {
    put_name(out, n);
    put<uint8_t>(out, s.kind);
    if (s.kind == 0)
      put<int64_t>(out, s.i);
    else if (s.kind == 1)
      put<double>(out, s.d);
    else
      put_name(out, s.s);
  }
  put<uint32_t>(out, crc32_update(0, out.data(), out.size()));
  return out;
}

int64_t StateDict::checkpoint_step() const {
  auto it = scalars_.find(kStepKey);
  return it != scalars_.end() && it->second.kind == 0 ? it->second.i : -1;
}

StateDict StateDict::deserialize(const std::string& bytes, const std::string& source) {
  const bool magic_ok = bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0;
  if (bytes.size() >= sizeof(kMagic) && !magic_ok) {
    throw std::runtime_error("checkpoint " + source + ": not a Scalpel checkpoint (wrong magic, expected 'SCALPEL1')");
  }
  if (bytes.size() < sizeof(kMagic) + 4) {
    throw std::runtime_error("checkpoint " + source + ": file is truncated (" + std::to_string(bytes.size()) +
                             " bytes, a valid checkpoint has at least " + std::to_string(kHeaderV1 + 4) + ")");
  }
  uint32_t version;
  std::memcpy(&version, bytes.data() + sizeof(kMagic), 4);
  if (version != 1 && version != 2) {
    throw std::runtime_error("checkpoint " + source + ": unsupported format version " + std::to_string(version) +
                             " (this build reads versions 1 and 2)");
  }
  const size_t header = version == 1 ? kHeaderV1 : kHeaderV2;
  // Version 2's header carries the step and its own CRC, so damage further on can name the step.
  std::string at = " (step unknown: format version 1)";
  if (version == 2) {
    if (bytes.size() < header) {
      throw std::runtime_error("checkpoint " + source + ": file is truncated inside its header (" +
                               std::to_string(bytes.size()) + " of " + std::to_string(header) +
                               " header bytes; step unknown)");
    }
    uint32_t header_crc;
    std::memcpy(&header_crc, bytes.data() + header - 4, 4);
    if (crc32_update(0, bytes.data(), header - 4) != header_crc) {
      throw std::runtime_error("checkpoint " + source + ": header checksum mismatch (header corrupted; step unknown)");
    }
    int64_t step;
    std::memcpy(&step, bytes.data() + kHeaderV1, 8);
    at = step >= 0 ? " (checkpoint of step " + std::to_string(step) + ")" : " (no step recorded)";
  }
  if (bytes.size() < header + 4) {
    throw std::runtime_error("checkpoint " + source + ": file is truncated (" + std::to_string(bytes.size()) +
                             " bytes, a valid checkpoint has at least " + std::to_string(header + 4) + ")" + at);
  }
  const size_t body = bytes.size() - 4;
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + body, 4);
  if (crc32_update(0, bytes.data(), body) != stored_crc) {
    throw std::runtime_error("checkpoint " + source + ": checksum mismatch (file is corrupted or truncated)" + at);
  }
  const std::string where = source + at;
  Reader r(bytes, body, where);
  r.skip(sizeof(kMagic) + 4);
  r.get<uint32_t>("flags");
  const uint64_t nt = r.get<uint64_t>("tensor count");
  const uint64_t ns = r.get<uint64_t>("scalar count");
  if (version == 2) r.skip(12);
  StateDict sd;
  for (uint64_t k = 0; k < nt; ++k) {
    const std::string name = r.get_string("a tensor name");
    const uint32_t rank = r.get<uint32_t>("a tensor rank");
    if (rank > 64)
      throw std::runtime_error("checkpoint " + where + ": tensor '" + name + "' has implausible rank " +
                               std::to_string(rank));
    Shape shape(rank);
    // The product of the non-zero dims is bounded too: a zero dim must not hide huge others,
    // whose strides would overflow (found by fuzz_state_dict).
    int64_t numel = 1, extent = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      shape[d] = r.get<int64_t>("a tensor shape");
      if (shape[d] < 0 || (shape[d] > 0 && extent > (int64_t{1} << 40) / shape[d])) {
        throw std::runtime_error("checkpoint " + where + ": tensor '" + name + "' has invalid shape (dim " +
                                 std::to_string(d) + " = " + std::to_string(shape[d]) +
                                 "; dims must be >= 0 with a product of at most 2^40)");
      }
      numel *= shape[d];
      extent *= std::max<int64_t>(shape[d], 1);
    }
    const std::string what = "tensor '" + name + "' data";
    r.need(static_cast<size_t>(numel) * sizeof(float), what.c_str());
    Tensor t = Tensor::empty(shape);
    r.get_floats(t.data(), numel, what);
    if (sd.has_tensor(name)) throw std::runtime_error("checkpoint " + where + ": tensor '" + name + "' appears twice");
    sd.set_tensor(name, t);
  }
  for (uint64_t k = 0; k < ns; ++k) {
    const std::string name = r.get_string("a scalar name");
    if (sd.has_scalar(name)) throw std::runtime_error("checkpoint " + where + ": scalar '" + name + "' appears twice");
    const uint8_t kind = r.get<uint8_t>("a scalar kind");
    if (kind == 0)
      sd.set_int(name, r.get<int64_t>("an int scalar"));
    else if (kind == 1)
      sd.set_double(name, r.get<double>("a double scalar"));
    else if (kind == 2)
      sd.set_string(name, r.get_string("a string scalar"));
    else
      throw std::runtime_error("checkpoint " + where + ": scalar '" + name + "' has unknown kind " +
                               std::to_string(kind));
  }
  if (r.pos() != body) {
    throw std::runtime_error("checkpoint " + where + ": " + std::to_string(body - r.pos()) +
                             " unexpected trailing bytes");
  }
  return sd;
}

namespace {
constexpr char kTempTag[] = ".tmp.";
}  // namespace

bool is_atomic_temp_name(const std::string& name) {
  const size_t tag = sizeof(kTempTag) - 1;
  const size_t pos = name.rfind(kTempTag);
  if (pos == std::string::npos || pos + tag >= name.size()) return false;
  for (size_t i = pos + tag; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return true;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + kTempTag + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error("cannot write " + path + ": " + err);
    }
    done += static_cast<size_t>(n);
  }
  // The descriptor is closed on every path, also when fsync fails.
  const bool synced = ::fsync(fd) == 0;
  const int sync_errno = errno;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    const std::string err = std::strerror(synced ? errno : sync_errno);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + err);
  }
  // Make the rename itself durable: sync the folder that holds the file.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void StateDict::save(const std::string& path) const { write_file_atomic(path, serialize()); }

StateDict StateDict::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("checkpoint " + path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return deserialize(ss.str(), path);
}

}  // namespace scalpel
