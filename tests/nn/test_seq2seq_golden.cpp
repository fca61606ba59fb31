// Golden tests: cross-attention, the padded encoder block, the decoder block and two 2 + 2 layer
// Seq2Seq models against PyTorch (tests/golden/seq2seq.json, written by
// tests/golden/gen_torch_seq2seq.py, whose references are checked there against torch's own
// nn.MultiheadAttention / TransformerEncoderLayer / TransformerDecoderLayer). Weights are loaded
// strictly; outputs and the gradients with respect to the inputs and EVERY parameter are compared
// (|a - e| <= atol + rtol |e|, tolerances stated per test).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "golden.h"
#include "golden_nn.h"
#include "nn/seq2seq.h"

using namespace scalpel;
using scalpel::testing::GoldenFile;
using scalpel::testing::load_golden_state;
using scalpel::testing::tensors_close;

namespace {

constexpr const char* kFixture = "seq2seq.json";

const GoldenFile& fixture() {
  static const GoldenFile f(kFixture);
  return f;
}

std::vector<int64_t> lengths_of(const std::string& c) { return fixture().index(c, "lengths").data; }

// out = f(inputs) against torch, then d<out, r>/d(inputs, every parameter).
void check_layer(nn::Module& m, const std::string& c, const std::function<Tensor(const std::vector<Tensor>&)>& f,
                 double atol, double rtol) {
  const GoldenFile& fx = fixture();
  ASSERT_TRUE(load_golden_state(m, fx, c));
  const auto names = fx.meta(c).at("inputs").get<std::vector<std::string>>();
  std::vector<Tensor> inputs, wrt;
  for (const auto& n : names) inputs.push_back(fx.tensor(c, n).set_requires_grad(true));
  Tensor out = f(inputs);
  EXPECT_TRUE(tensors_close(out, fx.tensor(c, "out"), atol, rtol, c + " out"));
  const auto named = m.named_parameters();
  wrt = inputs;
  for (const auto& [n, p] : named) wrt.push_back(p);
  const auto grads = grad({out}, wrt, GradOptions().set_seeds({fx.tensor(c, "cotangent")}));
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_TRUE(tensors_close(grads[i], fx.tensor(c, "grad." + names[i]), atol, rtol, c + " grad." + names[i]));
  }
  for (size_t i = 0; i < named.size(); ++i) {
    EXPECT_TRUE(tensors_close(grads[names.size() + i], fx.tensor(c, "grad." + named[i].first), atol, rtol,
                              c + " grad." + named[i].first));
  }
}

}  // namespace

TEST(Seq2SeqGolden, FixtureCasesAreAllTested) {
  std::ifstream in(std::string(SCALPEL_GOLDEN_DIR) + "/" + kFixture);
  ASSERT_TRUE(in) << kFixture << " missing";
  nlohmann::json j;
  in >> j;
  std::set<std::string> cases;
  for (const auto& kv : j.at("cases").items()) cases.insert(kv.key());
  EXPECT_EQ(cases, (std::set<std::string>{"cross_attention", "encoder_block_padded", "decoder_block",
                                          "seq2seq_shared_tied", "seq2seq_separate"}));
}

// Single layers: float32 sums of a few dozen terms; atol 1e-5, rtol 1e-5.
TEST(Seq2SeqGolden, CrossAttentionWithMemoryPadding) {
  const std::string c = "cross_attention";
  const auto& meta = fixture().meta(c);
  Generator gen(0);
  nn::MultiheadCrossAttention m(nn::AttentionOptions(meta.at("d_model"), meta.at("heads")), gen);
  const auto lengths = lengths_of(c);
  check_layer(
      m, c, [&](const std::vector<Tensor>& in) { return m.forward(in[0], in[1], lengths); }, 1e-5, 1e-5);
}

TEST(Seq2SeqGolden, EncoderBlockWithKeyPadding) {
  const std::string c = "encoder_block_padded";
  const auto& meta = fixture().meta(c);
  Generator gen(0);
  nn::TransformerBlock m(
      nn::TransformerBlockOptions(meta.at("d_model"), meta.at("heads")).d_ff(meta.at("d_ff")).causal(false), gen);
  const auto lengths = lengths_of(c);
  check_layer(
      m, c, [&](const std::vector<Tensor>& in) { return m.forward(in[0], lengths); }, 1e-5, 1e-5);
}

TEST(Seq2SeqGolden, DecoderBlock) {
  const std::string c = "decoder_block";
  const auto& meta = fixture().meta(c);
  Generator gen(0);
  nn::DecoderBlock m(nn::DecoderBlockOptions(meta.at("d_model"), meta.at("heads")).d_ff(meta.at("d_ff")), gen);
  const auto lengths = lengths_of(c);
  check_layer(
      m, c, [&](const std::vector<Tensor>& in) { return m.forward(in[0], in[1], lengths); }, 1e-5, 1e-5);
}

// Whole models: logits, the masked mean cross-entropy and every parameter's gradient of it;
// atol 2e-5, rtol 1e-4 (four blocks deep, sums over the vocabulary).
TEST(Seq2SeqGolden, ModelsLogitsLossAndGradients) {
  for (const char* c : {"seq2seq_shared_tied", "seq2seq_separate"}) {
    SCOPED_TRACE(c);
    const GoldenFile& fx = fixture();
    const auto& meta = fx.meta(c);
    Generator gen(0);
    nn::Seq2Seq m(nn::Seq2SeqOptions()
                      .vocab(meta.at("vocab"))
                      .encoder_layers(meta.at("encoder_layers"))
                      .decoder_layers(meta.at("decoder_layers"))
                      .heads(meta.at("heads"))
                      .d_model(meta.at("d_model"))
                      .d_ff(meta.at("d_ff"))
                      .max_len(meta.at("max_len"))
                      .shared_embeddings(meta.at("shared_embeddings"))
                      .tied(meta.at("tied")),
                  gen);
    ASSERT_TRUE(load_golden_state(m, fx, c));
    const IndexTensor src = fx.index(c, "src"), tin = fx.index(c, "tgt_in"), tout = fx.index(c, "tgt_out");
    const auto lengths = lengths_of(c);
    EXPECT_TRUE(tensors_close(m.forward(src, lengths, tin), fx.tensor(c, "out"), 2e-5, 1e-4, std::string(c) + " out"));
    Tensor loss = m.loss(src, lengths, tin, tout);
    EXPECT_TRUE(tensors_close(loss, fx.tensor(c, "loss"), 2e-5, 1e-4, std::string(c) + " loss"));
    const auto named = m.named_parameters();
    std::vector<Tensor> wrt;
    for (const auto& [n, p] : named) wrt.push_back(p);
    const auto grads = grad({loss}, wrt);
    for (size_t i = 0; i < named.size(); ++i) {
      EXPECT_TRUE(tensors_close(grads[i], fx.tensor(c, "grad." + named[i].first), 2e-5, 1e-4,
                                std::string(c) + " grad." + named[i].first));
    }
  }
}
