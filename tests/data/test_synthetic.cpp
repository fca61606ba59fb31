// Built-in synthetic sets: balanced classes, determinism from the seed (also across thread
// counts), text corpora statistics, export to the real formats and back through the real
// loaders, the resolve_* fallbacks, and learnability of synthetic-digits (MLP beats a linear
// model, both far above chance).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "core/ops.h"
#include "core/parallel.h"
#include "data/data.h"
#include "temp_dir.h"

using namespace scalpel;
using namespace scalpel::data;
using scalpel::testing::TempDir;

namespace {

std::vector<int64_t> class_counts(const U8ImageDataset& ds) {
  std::vector<int64_t> c(10, 0);
  for (int64_t i = 0; i < ds.size(); ++i) ++c[static_cast<size_t>(ds.label(i))];
  return c;
}

std::vector<uint8_t> all_pixels(const U8ImageDataset& ds) {
  const int64_t per = ds.channels() * ds.height() * ds.width();
  return std::vector<uint8_t>(ds.pixels(0), ds.pixels(0) + per * ds.size());
}

}  // namespace

TEST(Synthetic, DigitsAndTexturesAreBalanced) {
  for (auto ds : {make_synthetic_digits(Split::Train, SyntheticOptions().size(1003)),
                  make_synthetic_textures(Split::Test, SyntheticOptions().size(1000))}) {
    const auto c = class_counts(*ds);
    for (int64_t v : c) {
      EXPECT_GE(v, ds->size() / 10);
      EXPECT_LE(v, (ds->size() + 9) / 10);
    }
  }
  EXPECT_EQ(make_synthetic_digits(Split::Test)->size(), 10000);
}

TEST(Synthetic, DeterministicFromTheSeedWhateverTheThreadCount) {
  const auto opts = SyntheticOptions().seed(9).size(300);
  set_num_threads(1);
  const auto d1 = make_synthetic_digits(Split::Train, opts);
  const auto t1 = make_synthetic_textures(Split::Train, opts);
  set_num_threads(2);
  const auto d2 = make_synthetic_digits(Split::Train, opts);
  const auto t2 = make_synthetic_textures(Split::Train, opts);
  set_num_threads(0);
  EXPECT_EQ(all_pixels(*d1), all_pixels(*d2));
  EXPECT_EQ(all_pixels(*t1), all_pixels(*t2));
  for (int64_t i = 0; i < 300; ++i) EXPECT_EQ(d1->label(i), d2->label(i));
  // Another seed, or the other split, gives other data.
  EXPECT_NE(all_pixels(*d1), all_pixels(*make_synthetic_digits(Split::Train, SyntheticOptions().seed(10).size(300))));
  EXPECT_NE(all_pixels(*d1), all_pixels(*make_synthetic_digits(Split::Test, opts)));
  // A bigger set starts with the same examples (example i depends only on the seed and i) -- except
  // labels, which are a balanced permutation of the whole split.
  const auto composite1 = make_synthetic_composite(Split::Test, SyntheticOptions().seed(4).size(20));
  const auto composite2 = make_synthetic_composite(Split::Test, SyntheticOptions().seed(4).size(20));
  for (int64_t i = 0; i < 20; ++i)
    EXPECT_EQ(composite1->get(i).input.to_vector(), composite2->get(i).input.to_vector());
}

TEST(Synthetic, DigitsLookLikeMnist) {
  const auto ds = make_synthetic_digits(Split::Train, SyntheticOptions().size(500));
  double mean = 0.0, zeros = 0.0;
  const auto px = all_pixels(*ds);
  for (uint8_t v : px) {
    mean += v / 255.0;
    zeros += v == 0;
  }
  mean /= static_cast<double>(px.size());
  zeros /= static_cast<double>(px.size());
  EXPECT_GT(mean, 0.06);  // MNIST: 0.13
  EXPECT_LT(mean, 0.25);
  EXPECT_GT(zeros, 0.6);  // MNIST: ~0.81 of pixels are exactly 0
  // The class means differ: the digits are not the same blob.
  std::vector<std::vector<double>> m(10, std::vector<double>(784, 0.0));
  for (int64_t i = 0; i < ds->size(); ++i)
    for (int p = 0; p < 784; ++p) m[static_cast<size_t>(ds->label(i))][static_cast<size_t>(p)] += ds->pixels(i)[p];
  double d01 = 0.0;
  for (int p = 0; p < 784; ++p) d01 += std::fabs(m[0][static_cast<size_t>(p)] - m[1][static_cast<size_t>(p)]);
  EXPECT_GT(d01 / 50.0 / 784.0 / 255.0, 0.02);
}

TEST(Synthetic, TextCorporaShareAnAlphabetButDiffer) {
  const TextCorpora t = make_synthetic_text(SyntheticTextOptions().seed(1).generic_bytes(200000).specific_bytes(50000));
  EXPECT_EQ(t.generic.size(), 200000);
  EXPECT_EQ(t.specific.size(), 50000);
  const std::string& alpha = synthetic_text_alphabet();
  std::map<uint8_t, double> fg, fs;
  for (int64_t i = 0; i < t.generic.size(); ++i) {
    ASSERT_NE(alpha.find(static_cast<char>(t.generic[i])), std::string::npos) << "byte " << int(t.generic[i]);
    fg[t.generic[i]] += 1.0 / static_cast<double>(t.generic.size());
  }
  for (int64_t i = 0; i < t.specific.size(); ++i) {
    ASSERT_NE(alpha.find(static_cast<char>(t.specific[i])), std::string::npos) << "byte " << int(t.specific[i]);
    fs[t.specific[i]] += 1.0 / static_cast<double>(t.specific.size());
  }
  // Shared alphabet: most byte values occur in both.
  int both = 0;
  for (const auto& kv : fs) both += fg.count(kv.first);
  EXPECT_GE(both, 30);
  // Different statistics: total variation distance of the byte distributions.
  std::set<uint8_t> keys;
  for (const auto& kv : fg) keys.insert(kv.first);
  for (const auto& kv : fs) keys.insert(kv.first);
  double tv = 0.0;
  for (uint8_t k : keys) tv += std::fabs(fg[k] - fs[k]) / 2.0;
  EXPECT_GT(tv, 0.15);
  // Deterministic from the seed; the default generic corpus is >= 10 MB.
  const TextCorpora again =
      make_synthetic_text(SyntheticTextOptions().seed(1).generic_bytes(200000).specific_bytes(50000));
  EXPECT_EQ(again.generic.str(), t.generic.str());
  EXPECT_EQ(again.specific.str(), t.specific.str());
  EXPECT_GE(SyntheticTextOptions().generic_bytes_, 10'000'000);
  EXPECT_NE(make_synthetic_text(SyntheticTextOptions().seed(2).generic_bytes(1000).specific_bytes(1000)).generic.str(),
            t.generic.str().substr(0, 1000));
}

TEST(Synthetic, ExportedFilesLoadBackIdentically) {
  TempDir dir;
  const auto opts = SyntheticOptions().seed(3).size(50);
  const auto digits = make_synthetic_digits(Split::Train, opts);
  write_mnist(*digits, dir / "mnist", Split::Train, true);
  const auto textures = make_synthetic_textures(Split::Train, opts);
  write_cifar10(*textures, dir / "cifar-10-batches-bin", Split::Train);
  // Resolvers take only complete sets (both splits).
  write_mnist(*make_synthetic_digits(Split::Test, opts), dir / "mnist", Split::Test, true);
  write_cifar10(*make_synthetic_textures(Split::Test, opts), dir / "cifar-10-batches-bin", Split::Test);
  const auto d2 = load_mnist(dir / "mnist", Split::Train);
  const auto t2 = load_cifar10(dir / "cifar-10-batches-bin", Split::Train);
  EXPECT_EQ(all_pixels(*digits), all_pixels(*d2));
  EXPECT_EQ(all_pixels(*textures), all_pixels(*t2));
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(digits->label(i), d2->label(i));
    EXPECT_EQ(textures->label(i), t2->label(i));
  }
  // The composite built from the exported real-format files equals synthetic-composite.
  const Resolved r = resolve_cifar10_mnist(Split::Train, DatasetOptions().data_dir(dir.path()).seed(3).size(50));
  EXPECT_FALSE(r.synthetic);
  const auto synth = make_synthetic_composite(Split::Train, opts);
  ASSERT_EQ(r.dataset->size(), 50);
  for (int64_t i = 0; i < 50; i += 7) {
    const Example a = r.dataset->get(i), b = synth->get(i);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.input.to_vector(), b.input.to_vector());
  }
  // Text files.
  const TextCorpora t = make_synthetic_text(SyntheticTextOptions().generic_bytes(5000).specific_bytes(700));
  write_text_atomic(dir / "generic.txt", t.generic.str());
  EXPECT_EQ(ByteCorpus::from_path(dir / "generic.txt").str(), t.generic.str());
}

TEST(Synthetic, ResolveFallsBackWithAHelpfulMessage) {
  TempDir dir;
  const auto o = DatasetOptions().data_dir(dir.path()).size(20);
  const Resolved m = resolve_mnist(Split::Train, o);
  EXPECT_TRUE(m.synthetic);
  EXPECT_EQ(m.dataset->size(), 20);
  EXPECT_NE(m.message.find("MNIST not found in " + dir.path() + "/mnist: using synthetic-digits"), std::string::npos)
      << m.message;
  EXPECT_NE(m.message.find("run scripts/fetch-data.sh or pass --data-dir"), std::string::npos) << m.message;
  const Resolved c = resolve_cifar10(Split::Test, o);
  EXPECT_TRUE(c.synthetic);
  EXPECT_NE(c.message.find("CIFAR-10 not found in " + dir.path() + "/cifar-10-batches-bin: using synthetic-textures"),
            std::string::npos)
      << c.message;
  const Resolved cm = resolve_cifar10_mnist(Split::Test, o);
  EXPECT_TRUE(cm.synthetic);
  EXPECT_EQ(cm.dataset->info().num_classes.size(), 2u);
  EXPECT_NE(cm.message.find("synthetic-digits"), std::string::npos) << cm.message;
  // Corrupt real files are not silently replaced by synthetic data.
  scalpel::testing::write_text(dir / "mnist/train-images-idx3-ubyte", "garbage");
  scalpel::testing::write_text(dir / "mnist/train-labels-idx1-ubyte", "garbage");
  EXPECT_THROW(resolve_mnist(Split::Train, o), std::runtime_error);
  const std::string unknown =
      scalpel::testing::error_of<std::invalid_argument>([] { make_dataset("imagenet", Split::Train); });
  EXPECT_NE(unknown.find("unknown dataset 'imagenet' (expected one of: mnist, cifar10"), std::string::npos) << unknown;
}

namespace {

// Trains a classifier on synthetic-digits with plain SGD and returns held-out accuracy.
// hidden = 0: linear model (softmax regression); else one hidden ReLU layer.
double train_digits(int64_t hidden, int64_t steps) {
  const auto train = make_synthetic_digits(Split::Train, SyntheticOptions().seed(1).size(6000));
  const auto test = make_synthetic_digits(Split::Test, SyntheticOptions().seed(1).size(1000));
  Generator g(123);
  std::vector<Tensor> params;
  auto layer = [&](int64_t in, int64_t out) {
    params.push_back(Tensor::normal({out, in}, g, 0.0f, 1.0f / std::sqrt(static_cast<float>(in))).set_requires_grad());
    params.push_back(Tensor::zeros({out}).set_requires_grad());
  };
  if (hidden > 0) {
    layer(784, hidden);
    layer(hidden, 10);
  } else {
    layer(784, 10);
  }
  auto forward = [&](const Tensor& x) {
    if (hidden == 0) return linear(x, params[0], params[1]);
    return linear(relu(linear(x, params[0], params[1])), params[2], params[3]);
  };
  auto pre = compose({normalize(kMnistMean, kMnistStd), flatten()});
  DataLoader loader(train, DataLoaderOptions().batch_size(64).seed(7).drop_last(true).transform(pre).prefetch(true));
  int64_t step = 0;
  for (int64_t e = 0; step < steps; ++e) {
    loader.start_epoch(e);
    Batch b;
    while (step < steps && loader.next(b)) {
      Tensor loss = cross_entropy(forward(b.input), b.labels[0]);
      for (auto& p : params) p.zero_grad();
      loss.backward();
      NoGradGuard ng;
      const float lr = 0.05f;
      for (auto& p : params) p.add_(p.grad(), -lr);
      ++step;
    }
  }
  NoGradGuard ng;
  DataLoader eval(test, DataLoaderOptions().batch_size(500).shuffle(false).transform(pre));
  eval.start_epoch(0);
  Batch b;
  int64_t correct = 0;
  while (eval.next(b)) {
    const IndexTensor pred = argmax(forward(b.input), 1);
    for (int64_t i = 0; i < b.size(); ++i)
      correct += pred.data[static_cast<size_t>(i)] == b.labels[0].data[static_cast<size_t>(i)];
  }
  return static_cast<double>(correct) / static_cast<double>(test->size());
}

}  // namespace

TEST(Synthetic, DigitsAreLearnableAndAnMlpBeatsALinearModel) {
  const double mlp = train_digits(128, 400);
  const double lin = train_digits(0, 400);
  std::cout << "synthetic-digits held-out accuracy after 400 SGD steps: MLP " << mlp << ", linear " << lin << "\n";
  EXPECT_GT(mlp, 0.70);        // chance is 0.10
  EXPECT_GT(lin, 0.30);        // learnable even linearly...
  EXPECT_GT(mlp, lin + 0.08);  // ...but clearly worse than the MLP
}
