#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

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
