// StateDict and the checkpoint file format: named tensors plus named scalars, saved atomically.
//
// Everything that can be saved and restored (module parameters and buffers, optimizer moments,
// surgeon EMAs, RNG and data-loader positions) is expressed as a StateDict: an ordered map from
// dotted names ("layer1.0.conv1.weight", "optim.exp_avg.3", "surgeon.ema.0") to tensors, plus
// exact scalars (int64 / double / string) for counters and settings.
//
// File format (little-endian), version 2 (version 1, still read, lacks the two header fields
// marked *):
//   magic "SCALPEL1" | u32 version | u32 flags(0) | u64 n_tensors | u64 n_scalars
//   | *i64 step (the int scalar kStepKey, -1 without it) | *u32 CRC-32 of the header bytes before it
//   per tensor: u32 name_len, name bytes, u32 rank, i64 dims[rank], f32 data[numel]
//   per scalar: u32 name_len, name bytes, u8 kind (0 int64, 1 double, 2 string), payload
//                (i64 | f64 | u32 len + bytes)
//   u32 CRC-32 (zlib) of every preceding byte.
// save() writes to "<path>.tmp.<pid>", fsyncs, and renames over <path>, so a crash never leaves a
// half-written checkpoint. load() checks magic, version, sizes and the checksums and names the
// file, what it found and (when the header is intact) the step on any mismatch.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace scalpel {

class StateDict {
 public:
  // The int scalar a trainer sets to the number of finished steps; the file header repeats it.
  static constexpr const char* kStepKey = "loop.step";
  // get_int(kStepKey) when present, else -1.
  int64_t checkpoint_step() const;

  // Tensors keep insertion order (names unique).
  void set_tensor(const std::string& name, const Tensor& t);
  bool has_tensor(const std::string& name) const;
  const Tensor& tensor(const std::string& name) const;  // throws naming the key when missing
  const std::vector<std::string>& tensor_names() const { return order_; }

  void set_int(const std::string& name, int64_t v);
  void set_double(const std::string& name, double v);
  void set_string(const std::string& name, const std::string& v);
  bool has_scalar(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;

  // Copies every entry of `other` under "<prefix>.<name>".
  void merge(const StateDict& other, const std::string& prefix);
  // The entries whose names start with "<prefix>.", with the prefix removed.
  StateDict sub(const std::string& prefix) const;

  size_t size() const { return order_.size() + scalars_.size(); }

  // Atomic write (temp file + fsync + rename); throws std::runtime_error naming the path.
  void save(const std::string& path) const;
  // Throws std::runtime_error naming the path on a missing, truncated or corrupted file.
  static StateDict load(const std::string& path);
  // In-memory forms of the same format.
  std::string serialize() const;
  static StateDict deserialize(const std::string& bytes, const std::string& source = "<memory>");

 private:
  struct Scalar {
    uint8_t kind = 0;
    int64_t i = 0;
    double d = 0.0;
    std::string s;
  };
  std::vector<std::string> order_;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, Scalar> scalars_;
};

// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& bytes);

// True for the name of write_file_atomic's temporary ("<name>.tmp.<pid>"): one left behind by a
// killed writer can be removed by whoever holds the folder.
bool is_atomic_temp_name(const std::string& file_name);

}  // namespace scalpel
