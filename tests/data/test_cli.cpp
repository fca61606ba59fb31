// The scalpel-data tool (export / show / usage errors) and the fuzz entry point run over its seed
// corpus plus seeded random mutations (the libFuzzer build runs it much longer: make fuzz).
#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include "data/data.h"
#include "temp_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

using namespace scalpel;
using namespace scalpel::data;
using scalpel::testing::TempDir;

namespace {

// Runs the tool with `args`; returns its exit status and captures stdout+stderr in `output`.
int run_tool(const std::string& args, std::string& output) {
  const std::string cmd = std::string(SCALPEL_DATA_TOOL) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  output.clear();
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) output.append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST(Cli, ExportWritesRealFormatsTheLoadersRead) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(
      run_tool("export synthetic-digits --out " + dir.path() + " --seed 5 --train-size 40 --test-size 10 --gzip", out),
      0)
      << out;
  ASSERT_EQ(run_tool("export synthetic-textures --out " + dir.path() + " --seed 5 --train-size 40 --test-size 10", out),
            0)
      << out;
  const auto d = load_mnist(dir / "mnist", Split::Test);
  const auto ref = make_synthetic_digits(Split::Test, SyntheticOptions().seed(5).size(10));
  ASSERT_EQ(d->size(), 10);
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(d->label(i), ref->label(i));
    EXPECT_EQ(std::vector<uint8_t>(d->pixels(i), d->pixels(i) + 784),
              std::vector<uint8_t>(ref->pixels(i), ref->pixels(i) + 784));
  }
  EXPECT_EQ(load_cifar10(dir / "cifar-10-batches-bin", Split::Train)->size(), 40);
  const Resolved r = resolve_cifar10_mnist(Split::Train, DatasetOptions().data_dir(dir.path()));
  EXPECT_FALSE(r.synthetic) << r.message;
  EXPECT_EQ(r.dataset->size(), 40);
  ASSERT_EQ(run_tool("export synthetic-text --out " + dir / "text" + " --generic-bytes 3000 --specific-bytes 500", out),
            0)
      << out;
  EXPECT_EQ(ByteCorpus::from_path(dir / "text/generic.txt").size(), 3000);
  EXPECT_EQ(ByteCorpus::from_path(dir / "text/specific.txt").size(), 500);
  ASSERT_EQ(
      run_tool("export synthetic-composite --out " + dir / "png" + " --format png --train-size 20 --test-size 10", out),
      0)
      << out;  // >= 1 per class
  ImageFolderDataset pngs(dir / "png/test", ImageFolderOptions().size(32, 32).channels(3));
  EXPECT_EQ(pngs.size(), 10);
  EXPECT_EQ(pngs.classes().size(), 10u);
}

TEST(Cli, ShowWritesAGrid) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(run_tool("show synthetic-digits --out " + dir / "g.png" + " --rows 2 --cols 3 --scale 1", out), 0) << out;
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load((dir / "g.png").c_str(), &w, &h, &c, 3);
  ASSERT_NE(px, nullptr);
  stbi_image_free(px);
  EXPECT_EQ(w, 3 * (28 + 2) + 2);
  EXPECT_EQ(h, 2 * (28 + 2) + 2);
}

TEST(Cli, UsageErrorsExitWith2AndNameTheFlag) {
  std::string out;
  EXPECT_EQ(run_tool("show synthetic-digits --out /tmp/x.png --rows 0", out), 2);
  EXPECT_NE(out.find("--rows"), std::string::npos) << out;
  EXPECT_EQ(run_tool("export synthetic-digits", out), 2);
  EXPECT_NE(out.find("--out"), std::string::npos) << out;
  EXPECT_EQ(run_tool("export imagenet --out /tmp/x", out), 2);
  EXPECT_NE(out.find("imagenet"), std::string::npos) << out;
  EXPECT_EQ(run_tool("frobnicate", out), 2);
  // A runtime error (missing real data) exits 1 and names the folder.
  EXPECT_EQ(run_tool("info mnist --data-dir /nonexistent-scalpel", out), 1);
  EXPECT_NE(out.find("/nonexistent-scalpel/mnist: MNIST train files not found"), std::string::npos) << out;
}

TEST(Fuzz, SeedCorpusAndRandomMutationsNeverCrash) {
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& e : std::filesystem::directory_iterator(SCALPEL_FUZZ_CORPUS))
    seeds.push_back(read_file(e.path().string()));
  ASSERT_GE(seeds.size(), 5u);
  Generator g(2024);
  for (const auto& s : seeds) {
    EXPECT_EQ(LLVMFuzzerTestOneInput(s.data(), s.size()), 0);
    for (int k = 0; k < 300; ++k) {
      std::vector<uint8_t> m = s;
      const int edits = 1 + static_cast<int>(g.randint(4));
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const size_t at = static_cast<size_t>(g.randint(static_cast<int64_t>(m.size())));
        switch (g.randint(3)) {
          case 0:
            m[at] = static_cast<uint8_t>(g.randint(256));
            break;
          case 1:
            m.resize(at + 1);
            break;
          default:
            m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(g.randint(256)));
            break;
        }
      }
      LLVMFuzzerTestOneInput(m.data(), m.size());
    }
  }
}
