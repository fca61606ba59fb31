// DataLoader: batching, seeded per-epoch shuffling, drop_last, prefetch equivalence, resumable
// position, per-example augmentation seeding, and error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "data/loader.h"
#include "data/text.h"
#include "temp_dir.h"

using namespace scalpel;
using namespace scalpel::data;

namespace {

// N images [1, 2, 3] whose pixels encode the index (pixel k of image i = (i*6 + k) / 255 mod 1)
// with two label sets (i % 10, i % 3).
std::shared_ptr<U8ImageDataset> indexed(int64_t n) {
  std::vector<uint8_t> px(static_cast<size_t>(n * 6));
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 6; ++k) px[static_cast<size_t>(i * 6 + k)] = static_cast<uint8_t>((i * 6 + k) % 256);
    labels.push_back(i % 10);
    labels.push_back(i % 3);
  }
  return std::make_shared<U8ImageDataset>("indexed", 1, 2, 3, std::move(px), std::move(labels),
                                          std::vector<int64_t>{10, 3});
}

std::vector<Batch> epoch(DataLoader& loader, int64_t e) {
  loader.start_epoch(e);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.input.shape(), b.input.shape());
  EXPECT_EQ(a.input.to_vector(), b.input.to_vector());
  ASSERT_EQ(a.labels.size(), b.labels.size());
  for (size_t l = 0; l < a.labels.size(); ++l) EXPECT_EQ(a.labels[l].data, b.labels[l].data);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.batch_index, b.batch_index);
}

}  // namespace

TEST(DataLoader, BatchesAreContiguousWithExactValuesAndLabels) {
  auto ds = indexed(10);
  DataLoader loader(ds, DataLoaderOptions().batch_size(4).shuffle(false));
  const auto batches = epoch(loader, 0);
  ASSERT_EQ(batches.size(), 3u);  // 4 + 4 + 2
  EXPECT_EQ(batches[2].size(), 2);
  const Batch& b = batches[1];
  EXPECT_EQ(b.input.shape(), (Shape{4, 1, 2, 3}));
  EXPECT_TRUE(b.input.is_contiguous());
  EXPECT_EQ(b.indices, (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_FLOAT_EQ(b.input.at({2, 0, 1, 2}), static_cast<float>(6 * 6 + 5) / 255.0f);
  ASSERT_EQ(b.labels.size(), 2u);
  EXPECT_EQ(b.labels[0].shape, (Shape{4}));
  EXPECT_EQ(b.labels[0].data, (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(b.labels[1].data, (std::vector<int64_t>{1, 2, 0, 1}));
}

TEST(DataLoader, ShuffleIsAPermutationDeterministicPerSeedAndEpoch) {
  auto ds = indexed(103);
  DataLoader a(ds, DataLoaderOptions().batch_size(10).seed(7));
  DataLoader b(ds, DataLoaderOptions().batch_size(10).seed(7));
  DataLoader c(ds, DataLoaderOptions().batch_size(10).seed(8));
  const auto a0 = epoch(a, 0), b0 = epoch(b, 0), c0 = epoch(c, 0), a1 = epoch(a, 1);
  ASSERT_EQ(a0.size(), 11u);
  std::vector<int64_t> seen;
  for (size_t i = 0; i < a0.size(); ++i) {
    expect_same(a0[i], b0[i]);
    seen.insert(seen.end(), a0[i].indices.begin(), a0[i].indices.end());
  }
  std::vector<int64_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 103; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);  // every example exactly once
  EXPECT_NE(seen, a.epoch_order(1));                                               // a new order every epoch
  EXPECT_NE(a0[0].indices, c0[0].indices);                                         // and per seed
  EXPECT_NE(a0[0].indices, a1[0].indices);
  // Epochs can be revisited in any order and give the same batches.
  const auto a0_again = epoch(a, 0);
  for (size_t i = 0; i < a0.size(); ++i) expect_same(a0[i], a0_again[i]);
}

TEST(DataLoader, DropLastDropsOnlyTheShortBatch) {
  auto ds = indexed(10);
  DataLoader keep(ds, DataLoaderOptions().batch_size(4).seed(1));
  DataLoader drop(ds, DataLoaderOptions().batch_size(4).seed(1).drop_last(true));
  EXPECT_EQ(keep.num_batches(), 3);
  EXPECT_EQ(drop.num_batches(), 2);
  const auto k = epoch(keep, 2), d = epoch(drop, 2);
  ASSERT_EQ(d.size(), 2u);
  for (const Batch& b : d) EXPECT_EQ(b.size(), 4);
  expect_same(k[0], d[0]);
  expect_same(k[1], d[1]);
  DataLoader exact(indexed(8), DataLoaderOptions().batch_size(4).drop_last(true));
  EXPECT_EQ(exact.num_batches(), 2);
  DataLoader small(indexed(3), DataLoaderOptions().batch_size(4).drop_last(true));
  EXPECT_EQ(small.num_batches(), 0);
  small.start_epoch(0);
  Batch b;
  EXPECT_FALSE(small.next(b));
}

TEST(DataLoader, PrefetchGivesTheSameBatchesInTheSameOrder) {
  auto ds = indexed(97);
  auto aug = compose({random_crop(1), random_horizontal_flip()});
  DataLoader sync(ds, DataLoaderOptions().batch_size(8).seed(3).transform(aug));
  DataLoader pre(ds, DataLoaderOptions().batch_size(8).seed(3).transform(aug).prefetch(true).prefetch_depth(3));
  for (int64_t e : {0, 1, 5}) {
    const auto s = epoch(sync, e), p = epoch(pre, e);
    ASSERT_EQ(s.size(), p.size());
    for (size_t i = 0; i < s.size(); ++i) expect_same(s[i], p[i]);
  }
  // Abandoning an epoch half way and seeking elsewhere is safe and still in order.
  pre.start_epoch(4);
  Batch b;
  ASSERT_TRUE(pre.next(b));
  pre.seek({2, 5});
  ASSERT_TRUE(pre.next(b));
  expect_same(b, sync.make_batch(2, 5));
}

TEST(DataLoader, AugmentationDependsOnSeedEpochAndIndexOnly) {
  auto ds = indexed(40);
  auto aug = random_crop(1);
  DataLoader a(ds, DataLoaderOptions().batch_size(5).seed(11).transform(aug));
  DataLoader b(ds, DataLoaderOptions().batch_size(7).seed(11).transform(aug));  // other batching
  // The same example in the same epoch is augmented identically, whatever the batch layout.
  const Batch ba = a.make_batch(0, 0);
  for (int64_t r = 0; r < ba.size(); ++r) {
    const int64_t idx = ba.indices[static_cast<size_t>(r)];
    bool found = false;
    for (int64_t k = 0; k < b.num_batches() && !found; ++k) {
      const Batch bb = b.make_batch(0, k);
      for (int64_t s = 0; s < bb.size(); ++s) {
        if (bb.indices[static_cast<size_t>(s)] != idx) continue;
        found = true;
        for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(ba.input.data()[r * 6 + j], bb.input.data()[s * 6 + j]);
      }
    }
    EXPECT_TRUE(found);
  }
  // Across epochs the same example gets different crops (with 9 possible shifts, 40 examples
  // cannot all coincide).
  DataLoader c(ds, DataLoaderOptions().batch_size(40).shuffle(false).seed(11).transform(aug));
  EXPECT_NE(c.make_batch(0, 0).input.to_vector(), c.make_batch(1, 0).input.to_vector());
}

TEST(DataLoader, ResumesBitExactlyMidEpoch) {
  auto ds = indexed(50);
  auto opts = DataLoaderOptions().batch_size(6).seed(5).transform(random_horizontal_flip());
  DataLoader ref(ds, opts);
  const auto full = epoch(ref, 3);
  DataLoader first(ds, opts);
  first.start_epoch(3);
  Batch b;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(first.next(b));
  const StateDict saved = StateDict::deserialize(first.state_dict().serialize());
  EXPECT_EQ(first.position(), (LoaderPosition{3, 4}));
  DataLoader resumed(ds, opts.prefetch(true));
  resumed.load_state_dict(saved);
  for (size_t i = 4; i < full.size(); ++i) {
    ASSERT_TRUE(resumed.next(b));
    expect_same(b, full[i]);
  }
  EXPECT_FALSE(resumed.next(b));
}

TEST(DataLoader, LoadStateRejectsADifferentSetup) {
  auto ds = indexed(50);
  DataLoader a(ds, DataLoaderOptions().batch_size(6).seed(5));
  DataLoader b(ds, DataLoaderOptions().batch_size(6).seed(6));
  try {
    b.load_state_dict(a.state_dict());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("field 'seed' was saved as 5 but this loader has 6"), std::string::npos)
        << e.what();
  }
  DataLoader c(indexed(49), DataLoaderOptions().batch_size(6).seed(5));
  EXPECT_THROW(c.load_state_dict(a.state_dict()), std::runtime_error);
}

TEST(DataLoader, RejectsBadOptions) {
  auto ds = indexed(10);
  try {
    DataLoader bad(ds, DataLoaderOptions().batch_size(0));
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size must be positive, got 0"), std::string::npos) << e.what();
  }
  try {
    DataLoader bad(ds, DataLoaderOptions().transform(normalize(kCifarMean, kCifarStd)));
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("3 channel statistics but the input [1, 2, 3] has 1 channels"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(DataLoader(nullptr), std::invalid_argument);
  DataLoader ok(ds, DataLoaderOptions().batch_size(4));
  EXPECT_THROW(ok.seek({0, 4}), std::out_of_range);
  EXPECT_THROW(ok.make_batch(0, 3), std::out_of_range);
}

namespace {
// A dataset whose example 13 cannot be read, to check error propagation.
class Faulty : public Dataset {
 public:
  int64_t size() const override { return 20; }
  DatasetInfo info() const override {
    DatasetInfo i;
    i.name = "faulty";
    i.input_shape = {2};
    i.num_classes = {2};
    return i;
  }
  Example get(int64_t i) const override {
    check_index(i);
    if (i == 13) throw std::runtime_error("faulty: example 13 is corrupt");
    Example e;
    e.input = Tensor::full({2}, static_cast<float>(i));
    e.labels = {i % 2};
    return e;
  }
};
}  // namespace

TEST(DataLoader, ErrorsInAWorkerSurfaceAtTheFailingBatch) {
  for (bool prefetch : {false, true}) {
    DataLoader loader(std::make_shared<Faulty>(), DataLoaderOptions().batch_size(5).shuffle(false).prefetch(prefetch));
    loader.start_epoch(0);
    Batch b;
    ASSERT_TRUE(loader.next(b));
    ASSERT_TRUE(loader.next(b));
    EXPECT_EQ(b.input.at({4, 1}), 9.0f);  // default read() path through get()
    try {
      loader.next(b);
      FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "faulty: example 13 is corrupt");
    }
    EXPECT_EQ(loader.position(), (LoaderPosition{0, 2}));  // still on the failing batch
  }
}

TEST(DataLoader, CollatesTokenDatasets) {
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 40; ++i) bytes.push_back(static_cast<uint8_t>('a' + i % 26));
  auto ds = std::make_shared<SequentialWindowDataset>(ByteCorpus("abc", bytes), 8);
  DataLoader loader(ds, DataLoaderOptions().batch_size(2).shuffle(false));
  loader.start_epoch(0);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_FALSE(b.input.defined());
  EXPECT_EQ(b.tokens.shape, (Shape{2, 8}));
  EXPECT_EQ(b.tokens.data[8], 'a' + 8);
  EXPECT_EQ(b.targets.data[8], 'a' + 9);
  EXPECT_TRUE(b.labels.empty());
  EXPECT_THROW(DataLoader(ds, DataLoaderOptions().transform(flatten())), std::invalid_argument);
}

TEST(Dataset, U8ImageDatasetValidatesItsContents) {
  const std::string bad_label = scalpel::testing::error_of<std::invalid_argument>([] {
    U8ImageDataset("tiny", 1, 1, 2, {1, 2, 3, 4}, {0, 10}, {10});
  });
  EXPECT_NE(bad_label.find("tiny: label 10 of example 1 is out of range [0, 10)"), std::string::npos) << bad_label;
  const std::string bad_size = scalpel::testing::error_of<std::invalid_argument>([] {
    U8ImageDataset("tiny", 1, 1, 2, {1, 2, 3}, {0}, {10});
  });
  EXPECT_NE(bad_size.find("3 pixel bytes is not a whole number of images of 2 bytes"), std::string::npos) << bad_size;
  U8ImageDataset ok("tiny", 1, 1, 2, {1, 2, 3, 4}, {0, 9}, {10});
  const std::string range = scalpel::testing::error_of<std::out_of_range>([&] { ok.get(2); });
  EXPECT_EQ(range, "tiny: index 2 out of range [0, 2)");
}

TEST(Dataset, TakeAndSubsetKeepValuesAndOrder) {
  auto ds = indexed(30);
  auto first = take(ds, 12);
  ASSERT_EQ(first->size(), 12);
  EXPECT_EQ(first->get(11).input.to_vector(), ds->get(11).input.to_vector());
  EXPECT_EQ(take(ds, 100)->size(), 30);
  SubsetDataset sub(ds, {29, 3, 3});
  EXPECT_EQ(sub.get(0).labels, (std::vector<int64_t>{9, 2}));
  EXPECT_EQ(sub.get(2).input.to_vector(), ds->get(3).input.to_vector());
  EXPECT_THROW(SubsetDataset(ds, {30}), std::out_of_range);
}

// Data parallel: n sharded loaders together return every global batch exactly once, in order,
// with the unsharded loader's rows, labels and augmentation.
TEST(DataLoaderShard, ShardsTileEveryGlobalBatchInOrder) {
  auto ds = indexed(23);
  for (int64_t ranks : {1, 2, 3}) {
    DataLoader whole(ds, DataLoaderOptions().batch_size(8).shuffle(true).seed(5).transform(random_horizontal_flip()));
    std::vector<std::unique_ptr<DataLoader>> parts;
    for (int64_t r = 0; r < ranks; ++r) {
      parts.push_back(std::make_unique<DataLoader>(
          ds,
          DataLoaderOptions().batch_size(8).shuffle(true).seed(5).shard(r, ranks).transform(random_horizontal_flip())));
      EXPECT_EQ(parts.back()->num_batches(), whole.num_batches()) << ranks << " ranks";
    }
    for (int64_t b = 0; b < whole.num_batches(); ++b) {
      const Batch g = whole.make_batch(1, b);
      std::vector<int64_t> joined;
      std::vector<float> pixels;
      for (int64_t r = 0; r < ranks; ++r) {
        const Batch p = parts[static_cast<size_t>(r)]->make_batch(1, b);
        EXPECT_EQ(p.global_size, g.size());
        // Contiguous parts as equal as possible: sizes differ by at most one.
        EXPECT_LE(std::abs(p.size() * ranks - g.size()), ranks) << "rank " << r << " batch " << b;
        EXPECT_EQ(p.labels[0].data.size(), static_cast<size_t>(p.size()));
        joined.insert(joined.end(), p.indices.begin(), p.indices.end());
        const std::vector<float> v = p.input.to_vector();
        pixels.insert(pixels.end(), v.begin(), v.end());
      }
      EXPECT_EQ(joined, g.indices) << ranks << " ranks, batch " << b;
      EXPECT_EQ(pixels, g.input.to_vector()) << ranks << " ranks, batch " << b;
    }
  }
}

TEST(DataLoaderShard, ALastBatchWithFewerRowsThanRanksIsLeftOut) {
  auto ds = indexed(17);  // batches of 8: 8 + 8 + 1
  EXPECT_EQ(DataLoader(ds, DataLoaderOptions().batch_size(8)).num_batches(), 3);
  EXPECT_EQ(DataLoader(ds, DataLoaderOptions().batch_size(8).shard(0, 2)).num_batches(), 2);
  EXPECT_EQ(DataLoader(indexed(18), DataLoaderOptions().batch_size(8).shard(1, 2)).num_batches(), 3);  // 8 + 8 + 2
}

TEST(DataLoaderShard, BadShardsAreRefusedNamingTheDataset) {
  auto ds = indexed(10);
  auto message = [&](DataLoaderOptions o) {
    try {
      DataLoader l(ds, o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  EXPECT_NE(message(DataLoaderOptions().batch_size(4).shard(2, 2)).find("shard 2 of 2 is out of range"),
            std::string::npos);
  EXPECT_NE(message(DataLoaderOptions().batch_size(4).shard(-1, 2)).find("DataLoader(indexed)"), std::string::npos);
  const std::string small = message(DataLoaderOptions().batch_size(2).shard(0, 3));
  EXPECT_NE(small.find("batch size 2 cannot be split over 3 ranks"), std::string::npos) << small;
}

TEST(DataLoaderShard, PositionAndStateAreThoseOfTheGlobalBatches) {
  auto ds = indexed(40);
  DataLoader a(ds, DataLoaderOptions().batch_size(8).seed(3).shard(1, 2));
  a.start_epoch(0);
  Batch b;
  a.next(b);
  a.next(b);
  DataLoader c(ds, DataLoaderOptions().batch_size(8).seed(3));  // another number of ranks
  c.load_state_dict(a.state_dict());
  EXPECT_EQ(c.position(), a.position());
  Batch x, y;
  a.next(x);
  c.next(y);
  EXPECT_EQ(x.global_size, y.size());
  EXPECT_EQ(x.indices, std::vector<int64_t>(y.indices.begin() + 4, y.indices.end()));  // rank 1's half
}
