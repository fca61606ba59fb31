// Module API: registration, dotted names, modes, zero_grad, parameter counts, options, state_dict
// round trips and the errors of load_state_dict and of layers given the wrong input shape.
#include <gtest/gtest.h>

#include "nn/byte_lm.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/resnet.h"

using namespace scalpel;

namespace {
class TwoLayer : public nn::Layer {
 public:
  explicit TwoLayer(Generator& gen) : Layer("TwoLayer") {
    enc = register_module("enc", std::make_shared<nn::Linear>(nn::LinearOptions(4, 3), gen));
    dec = register_module("dec", std::make_shared<nn::Linear>(nn::LinearOptions(3, 2).bias(false), gen));
    scale = register_parameter("scale", Tensor::ones({2}));
    count = register_buffer("count", Tensor::zeros({1}));
  }
  Tensor forward(const Tensor& x) override { return mul(dec->forward(relu(enc->forward(x))), scale); }
  std::shared_ptr<nn::Linear> enc, dec;
  Tensor scale, count;
};
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}
}  // namespace

TEST(Module, NamedParametersAreDottedAndOrdered) {
  Generator gen(0);
  TwoLayer m(gen);
  std::vector<std::string> names;
  for (auto& [n, p] : m.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"scale", "enc.weight", "enc.bias", "dec.weight"}));
  std::vector<std::string> bufs;
  for (auto& [n, b] : m.named_buffers()) bufs.push_back(n);
  EXPECT_EQ(bufs, (std::vector<std::string>{"count"}));
  EXPECT_EQ(m.num_parameters(), 2 + 12 + 3 + 6);
  for (const Tensor& p : m.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(m.enc->path(), "enc");
  EXPECT_EQ(m.enc->describe(), "Linear 'enc'");
}

TEST(Module, ResNetNamesFollowTorchvision) {
  Generator gen(0);
  nn::ResNet18 net(nn::ResNetOptions().width(4).heads({10, 5}), gen);
  std::vector<std::string> names;
  for (auto& [n, p] : net.named_parameters()) names.push_back(n);
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  EXPECT_TRUE(has("conv1.weight"));
  EXPECT_TRUE(has("layer1.0.conv1.weight"));
  EXPECT_TRUE(has("layer2.0.downsample.0.weight"));
  EXPECT_TRUE(has("layer4.1.bn2.bias"));
  EXPECT_TRUE(has("heads.1.weight"));
  EXPECT_FALSE(has("layer1.0.downsample.0.weight"));
  std::vector<std::string> bufs;
  for (auto& [n, b] : net.named_buffers()) bufs.push_back(n);
  EXPECT_TRUE(std::find(bufs.begin(), bufs.end(), "layer3.1.bn1.running_var") != bufs.end());
}

TEST(Module, DotsInNamesAreRejected) {
  nn::Sequential s;
  EXPECT_NE(message_of([&] { s.register_parameter("a.b", Tensor::ones({1})); }).find("'a.b' is invalid"),
            std::string::npos);
  EXPECT_THROW(s.register_buffer("", Tensor::ones({1})), std::invalid_argument);
  Generator gen(0);
  EXPECT_THROW(s.register_module("x.y", std::make_shared<nn::Linear>(nn::LinearOptions(1, 1), gen)),
               std::invalid_argument);
  s.register_parameter("w", Tensor::ones({1}));
  EXPECT_NE(message_of([&] { s.register_parameter("w", Tensor::ones({1})); }).find("already registered"),
            std::string::npos);
}

TEST(Module, TrainEvalSwitchesModesButNotRecording) {
  Generator gen(0);
  TwoLayer m(gen);
  EXPECT_TRUE(m.is_training());
  m.eval();
  EXPECT_FALSE(m.enc->is_training());
  Tensor y = m.forward(Tensor::ones({1, 4}));
  EXPECT_TRUE(y.requires_grad()) << "eval() must not switch off gradient recording";
  m.train();
  EXPECT_TRUE(m.dec->is_training());
}

TEST(Module, ZeroGradDropsGradients) {
  Generator gen(0);
  TwoLayer m(gen);
  m.forward(Tensor::ones({2, 4})).sum().backward();
  EXPECT_TRUE(m.enc->weight.grad().defined());
  m.zero_grad();
  for (const Tensor& p : m.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Module, OptionsChain) {
  nn::LinearOptions o = nn::LinearOptions(784, 256).bias(false);
  EXPECT_EQ(o.in_features(), 784);
  EXPECT_FALSE(o.bias());
  Generator gen(0);
  nn::Linear l(o, gen);
  EXPECT_FALSE(l.bias.defined());
  EXPECT_EQ(l.named_parameters().size(), 1u);
}

TEST(Module, SameSeedSameInit) {
  Generator g1(42), g2(42), g3(43);
  nn::MLP a(nn::MLPOptions({8, 16, 4}), g1), b(nn::MLPOptions({8, 16, 4}), g2), c(nn::MLPOptions({8, 16, 4}), g3);
  EXPECT_EQ(a.parameters()[0].to_vector(), b.parameters()[0].to_vector());
  EXPECT_NE(a.parameters()[0].to_vector(), c.parameters()[0].to_vector());
}

TEST(Checkpoint, StateDictRoundTripIsBitExact) {
  Generator gen(1), gen2(2);
  nn::ResNet18 a(nn::ResNetOptions().width(2).heads({3, 4}), gen);
  nn::ResNet18 b(nn::ResNetOptions().width(2).heads({3, 4}), gen2);
  {  // make the BatchNorm buffers non-trivial
    a.train();
    a.forward(Tensor::normal({2, 3, 8, 8}, gen));
  }
  const std::string path = ::testing::TempDir() + "/resnet.ckpt";
  a.save(path);
  b.load(path);
  auto pa = a.state_dict(), pb = b.state_dict();
  ASSERT_EQ(pa.tensor_names(), pb.tensor_names());
  for (const auto& n : pa.tensor_names()) EXPECT_EQ(pa.tensor(n).to_vector(), pb.tensor(n).to_vector()) << n;
  // b's parameters are still the same handles, now holding a's values
  EXPECT_EQ(b.heads[1]->weight.to_vector(), a.heads[1]->weight.to_vector());
}

TEST(Checkpoint, LoadErrorsNameTheKeyAndShapes) {
  Generator gen(0);
  TwoLayer m(gen);
  StateDict sd = m.state_dict();
  StateDict missing;
  for (const auto& n : sd.tensor_names()) {
    if (n != "enc.bias") missing.set_tensor(n, sd.tensor(n));
  }
  EXPECT_NE(message_of([&] { m.load_state_dict(missing); }).find("missing key 'enc.bias' (shape [3])"),
            std::string::npos);
  StateDict extra = sd;
  extra.set_tensor("dec.bias", Tensor::zeros({2}));
  EXPECT_NE(message_of([&] { m.load_state_dict(extra); }).find("unexpected key 'dec.bias'"), std::string::npos);
  StateDict wrong = sd;
  wrong.set_tensor("enc.weight", Tensor::zeros({3, 5}));
  const std::string msg = message_of([&] { m.load_state_dict(wrong); });
  EXPECT_NE(msg.find("shape mismatch for 'enc.weight': checkpoint has [3, 5], model has [3, 4]"), std::string::npos)
      << msg;
  EXPECT_NO_THROW(m.load_state_dict(missing, /*strict=*/false));
}

TEST(Checkpoint, TruncatedOrCorruptedFileSaysSo) {
  Generator gen(0);
  TwoLayer m(gen);
  const std::string bytes = m.state_dict().serialize();
  const std::string path = ::testing::TempDir() + "/trunc.ckpt";
  write_file_atomic(path, bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(message_of([&] { m.load(path); }).find(path), std::string::npos);
  std::string bad = bytes;
  bad[bytes.size() - 10] ^= 1;
  write_file_atomic(path, bad);
  EXPECT_NE(message_of([&] { m.load(path); }).find("checksum mismatch"), std::string::npos);
}

TEST(Layers, WrongInputShapeNamesTheLayerAndShapes) {
  Generator gen(0);
  TwoLayer m(gen);
  const std::string msg = message_of([&] { m.forward(Tensor::ones({32, 100})); });
  EXPECT_NE(msg.find("Linear 'enc' (4 -> 3): input has shape [32, 100], expected [..., 4]"), std::string::npos) << msg;
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3), gen);
  EXPECT_NE(message_of([&] {
              conv.forward(Tensor::ones({2, 4, 8, 8}));
            }).find("input has shape [2, 4, 8, 8], expected [N, 3, H, W]"),
            std::string::npos);
  nn::LayerNorm ln(nn::LayerNormOptions(6));
  EXPECT_NE(message_of([&] {
              ln.forward(Tensor::ones({2, 5}));
            }).find("LayerNorm: input has shape [2, 5], expected [..., 6]"),
            std::string::npos);
  nn::ByteLM lm(nn::ByteLMOptions().layers(1).heads(2).d_model(8).d_ff(16).max_len(4), gen);
  EXPECT_NE(message_of([&] {
              lm.forward(IndexTensor(std::vector<int64_t>(10, 1), {2, 5}));
            }).find("exceeds max_len 4"),
            std::string::npos);
}

// Conv2dOptions::algo reaches core conv2d: every algorithm gives the layer's output to float
// rounding, and a choice the direct kernels cannot take is refused with core's message.
TEST(Layers, Conv2dAlgorithmOptionIsPassedThrough) {
  Generator gen(21);
  const Tensor x = Tensor::normal({2, 8, 9, 9}, gen);
  std::vector<float> reference;
  for (ConvAlgo algo : {ConvAlgo::kAuto, ConvAlgo::kIm2col, ConvAlgo::kIm2colRows, ConvAlgo::kDirect}) {
    Generator init(22);  // same weights every time
    nn::Conv2d conv(nn::Conv2dOptions(8, 12, 3).padding(1).algo(algo), init);
    const std::vector<float> y = conv.forward(x).to_vector();
    if (reference.empty()) reference = y;
    ASSERT_EQ(y.size(), reference.size());
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], reference[i], 1e-5f) << i;
  }
  Generator init(23);
  nn::Conv2d bad(nn::Conv2dOptions(8, 12, 3).padding(3).algo(ConvAlgo::kDirect), init);
  EXPECT_NE(message_of([&] { bad.forward(x); }).find("ConvAlgo::kDirect at stride 1 needs padding smaller"),
            std::string::npos);
}
