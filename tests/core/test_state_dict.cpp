#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/checksum.h"
#include "core/ops.h"
#include "core/state_dict.h"

using namespace scalpel;

namespace {
std::string tmp_path(const std::string& name) { return ::testing::TempDir() + "/" + name; }
}  // namespace

TEST(StateDict, RoundTripIsBitExact) {
  Generator g(3);
  StateDict sd;
  sd.set_tensor("layer1.weight", Tensor::normal({3, 4}, g));
  sd.set_tensor("scalar", Tensor::scalar(1.0f / 3.0f));
  sd.set_tensor("view", Tensor::normal({4, 3}, g).t());  // non-contiguous is saved row-major
  sd.set_int("step", 123456789012345);
  sd.set_double("lr", 0.1);
  sd.set_string("method", "bloop");
  const std::string path = tmp_path("rt.ckpt");
  sd.save(path);
  StateDict back = StateDict::load(path);
  ASSERT_EQ(back.tensor_names(), sd.tensor_names());
  for (const auto& n : sd.tensor_names()) {
    EXPECT_EQ(back.tensor(n).shape(), sd.tensor(n).shape());
    EXPECT_EQ(back.tensor(n).to_vector(), sd.tensor(n).to_vector()) << n;
  }
  EXPECT_EQ(back.get_int("step"), 123456789012345);
  EXPECT_EQ(back.get_double("lr"), 0.1);
  EXPECT_EQ(back.get_string("method"), "bloop");
}

TEST(StateDict, TruncatedAndCorruptedFilesAreRejected) {
  StateDict sd;
  sd.set_tensor("w", Tensor::ones({10}));
  const std::string bytes = sd.serialize();
  for (size_t cut : {size_t{0}, size_t{5}, size_t{30}, bytes.size() - 1}) {
    try {
      StateDict::deserialize(bytes.substr(0, cut), "x.ckpt");
      FAIL() << "accepted a file truncated to " << cut << " bytes";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("x.ckpt"), std::string::npos) << e.what();
    }
  }
  std::string bad = bytes;
  bad[bad.size() / 2] ^= 0x5a;
  try {
    StateDict::deserialize(bad, "x.ckpt");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
  std::string magic = bytes;
  magic[0] = 'X';
  try {
    StateDict::deserialize(magic, "x.ckpt");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("wrong magic"), std::string::npos) << e.what();
  }
  EXPECT_THROW(StateDict::load(tmp_path("does-not-exist.ckpt")), std::runtime_error);
}

TEST(StateDict, SaveIsAtomicAndReplacesTheOldFile) {
  const std::string path = tmp_path("atomic.ckpt");
  StateDict a;
  a.set_int("v", 1);
  a.save(path);
  StateDict b;
  b.set_int("v", 2);
  b.save(path);
  EXPECT_EQ(StateDict::load(path).get_int("v"), 2);
  std::ifstream tmp(path + ".tmp." + std::to_string(::getpid()));
  EXPECT_FALSE(tmp.good()) << "temporary file left behind";
}

TEST(StateDict, MergeSubAndErrors) {
  StateDict inner;
  inner.set_tensor("w", Tensor::ones({2}));
  inner.set_int("step", 4);
  StateDict outer;
  outer.merge(inner, "optim");
  EXPECT_TRUE(outer.has_tensor("optim.w"));
  StateDict back = outer.sub("optim");
  EXPECT_EQ(back.get_int("step"), 4);
  EXPECT_EQ(back.tensor("w").to_vector(), (std::vector<float>{1, 1}));
  try {
    back.tensor("nope");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos);
  }
  EXPECT_THROW(back.get_double("step"), std::invalid_argument);
}

namespace {
template <class T>
void put_raw(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// Pieces of a hand-built version-1 file (layout in core/state_dict.h).
std::string v1_header(uint64_t n_tensors, uint64_t n_scalars) {
  std::string f("SCALPEL1", 8);
  put_raw<uint32_t>(f, 1);  // version
  put_raw<uint32_t>(f, 0);  // flags
  put_raw<uint64_t>(f, n_tensors);
  put_raw<uint64_t>(f, n_scalars);
  return f;
}
void put_name(std::string& f, const std::string& name) {
  put_raw<uint32_t>(f, static_cast<uint32_t>(name.size()));
  f += name;
}
void put_int_scalar(std::string& f, const std::string& name, int64_t v) {
  put_name(f, name);
  put_raw<uint8_t>(f, 0);
  put_raw<int64_t>(f, v);
}
// Appends the trailing CRC-32 of everything before it.
void seal(std::string& f) { put_raw<uint32_t>(f, crc32_update(0, f.data(), f.size())); }

std::string message_of(const std::string& bytes) {
  try {
    StateDict::deserialize(bytes, "c.ckpt");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(StateDict, HeaderRecordsTheStepAndIsChecksummed) {
  StateDict sd;
  sd.set_tensor("w", Tensor::ones({3}));
  sd.set_int(StateDict::kStepKey, 4242);
  EXPECT_EQ(sd.checkpoint_step(), 4242);
  const std::string bytes = sd.serialize();
  uint32_t version;
  std::memcpy(&version, bytes.data() + 8, 4);
  EXPECT_EQ(version, 2u);
  int64_t step;
  std::memcpy(&step, bytes.data() + 32, 8);
  EXPECT_EQ(step, 4242);
  uint32_t header_crc;
  std::memcpy(&header_crc, bytes.data() + 40, 4);
  EXPECT_EQ(header_crc, crc32_update(0, bytes.data(), 40));
  StateDict no_step;
  no_step.set_int("other", 1);
  EXPECT_EQ(no_step.checkpoint_step(), -1);
  const std::string b2 = no_step.serialize();
  std::memcpy(&step, b2.data() + 32, 8);
  EXPECT_EQ(step, -1);
}

TEST(StateDict, EveryTruncationAndBitFlipNamesTheStepOrTheHeader) {
  StateDict sd;
  sd.set_tensor("layer.w", Tensor::ones({2, 3}));
  sd.set_int(StateDict::kStepKey, 77);
  sd.set_string("method", "bloop");
  const std::string bytes = sd.serialize();
  const size_t header = 44;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    const std::string msg = message_of(bytes.substr(0, cut));
    ASSERT_FALSE(msg.empty()) << "accepted a file truncated to " << cut << " bytes";
    EXPECT_NE(msg.find("c.ckpt"), std::string::npos) << msg;
    if (cut >= header) {
      EXPECT_NE(msg.find("checkpoint of step 77"), std::string::npos) << "cut " << cut << ": " << msg;
    } else if (cut >= 12) {
      EXPECT_NE(msg.find("step unknown"), std::string::npos) << "cut " << cut << ": " << msg;
    }
  }
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    for (int bit : {0, 7}) {
      std::string bad = bytes;
      bad[pos] = static_cast<char>(bad[pos] ^ (1 << bit));
      const std::string msg = message_of(bad);
      ASSERT_FALSE(msg.empty()) << "accepted a flip of bit " << bit << " at byte " << pos;
      if (pos >= header) {
        EXPECT_NE(msg.find("checkpoint of step 77"), std::string::npos) << "byte " << pos << ": " << msg;
      } else if (pos >= 12) {
        EXPECT_NE(msg.find("header checksum mismatch"), std::string::npos) << "byte " << pos << ": " << msg;
      }
    }
  }
}

TEST(StateDict, ReadsVersionOneFiles) {
  // Hand-built version-1 file: one tensor "w" = [1.5, -2], one int scalar "n" = 9.
  std::string v1 = v1_header(1, 1);
  put_name(v1, "w");
  put_raw<uint32_t>(v1, 1);
  put_raw<int64_t>(v1, 2);
  put_raw<float>(v1, 1.5f);
  put_raw<float>(v1, -2.0f);
  put_int_scalar(v1, "n", 9);
  seal(v1);
  StateDict back = StateDict::deserialize(v1, "old.ckpt");
  EXPECT_EQ(back.tensor("w").to_vector(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(back.get_int("n"), 9);
  std::string bad = v1;
  bad[40] ^= 1;
  const std::string msg = message_of(bad);
  EXPECT_NE(msg.find("step unknown: format version 1"), std::string::npos) << msg;
}

TEST(StateDict, UnknownVersionAndDuplicateNamesAreRejected) {
  StateDict sd;
  sd.set_int("a", 1);
  std::string bytes = sd.serialize();
  bytes[8] = 3;
  EXPECT_NE(message_of(bytes).find("unsupported format version 3"), std::string::npos) << message_of(bytes);
  // A version-1 file whose two scalars share a name (valid CRC): rejected, not silently overwritten.
  std::string dup = v1_header(0, 2);
  for (int k = 0; k < 2; ++k) put_int_scalar(dup, "s", k);
  seal(dup);
  EXPECT_NE(message_of(dup).find("scalar 's' appears twice"), std::string::npos) << message_of(dup);
}

TEST(StateDict, AZeroDimDoesNotHideHugeOnes) {
  // Version-1 file, valid CRC: tensor "t" of shape [0, 2^24, 2^47] (no data). Its element count
  // is 0, but the strides of such a shape overflow int64; found by fuzz_state_dict.
  std::string f = v1_header(1, 0);
  put_name(f, "t");
  put_raw<uint32_t>(f, 3);
  for (int64_t d : {int64_t{0}, int64_t{1} << 24, int64_t{1} << 47}) put_raw<int64_t>(f, d);
  seal(f);
  const std::string msg = message_of(f);
  EXPECT_NE(msg.find("tensor 't' has invalid shape (dim 2 = 140737488355328"), std::string::npos) << msg;
}
