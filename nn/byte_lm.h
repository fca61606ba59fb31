// ByteLM: a decoder-only transformer language model over bytes (vocabulary 256).
//
//   nn::ByteLM lm(nn::ByteLMOptions().layers(4).heads(8).d_model(256).d_ff(1024).max_len(128), gen);
//   Tensor logits = lm.forward(tokens);   // tokens [B, T] (ids 0..255) -> logits [B, T, 256]
//   Tensor loss = lm.loss(tokens, targets);  // mean next-byte cross-entropy (nats)
//
// Token embedding + learned position embedding, N pre-LayerNorm causal blocks, a final LayerNorm
// ("ln_f") and an output head that is either tied to the token embedding (logits = h · Eᵀ) or a
// separate bias-free Linear ("head"). Weights are initialised GPT-2 style: N(0, 0.02) for linear
// and embedding weights, zeros for biases. The paper's size is layers 12, heads 8, d 256, ff 1024.
#pragma once

#include <vector>

#include "nn/transformer.h"

namespace scalpel {
namespace nn {

struct ByteLMOptions {
  SCALPEL_ARG(int64_t, vocab) = 256;
  SCALPEL_ARG(int64_t, layers) = 12;
  SCALPEL_ARG(int64_t, heads) = 8;
  SCALPEL_ARG(int64_t, d_model) = 256;
  SCALPEL_ARG(int64_t, d_ff) = 1024;
  SCALPEL_ARG(int64_t, max_len) = 256;
  SCALPEL_ARG(bool, tied) = true;
  SCALPEL_ARG(double, dropout) = 0.0;
  SCALPEL_ARG(double, init_std) = 0.02;
};

class ByteLM : public Module {
 public:
  ByteLM(const ByteLMOptions& options, Generator& gen);
  // tokens [B, T] -> logits [B, T, vocab]
  Tensor forward(const IndexTensor& tokens);
  // Mean next-byte cross-entropy of forward(tokens) against targets [B, T] (nats per byte).
  Tensor loss(const IndexTensor& tokens, const IndexTensor& targets);
  const ByteLMOptions& options() const { return options_; }
  std::shared_ptr<Embedding> tok_emb, pos_emb;
  std::vector<std::shared_ptr<TransformerBlock>> blocks;
  std::shared_ptr<LayerNorm> ln_f;
  std::shared_ptr<Linear> head;  // null when tied

 private:
  ByteLMOptions options_;
};

}  // namespace nn
}  // namespace scalpel
