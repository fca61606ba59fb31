#include "nn/byte_lm.h"

#include <stdexcept>

#include "nn/init.h"

namespace scalpel {
namespace nn {

ByteLM::ByteLM(const ByteLMOptions& options, Generator& gen) : Module("ByteLM"), options_(options) {
  if (options.layers() < 0 || options.max_len() <= 0 || options.vocab() <= 0) {
    throw std::invalid_argument("ByteLM: layers must be >= 0 and max_len, vocab positive");
  }
  const int64_t d = options.d_model();
  tok_emb = register_module(
      "tok_emb", std::make_shared<Embedding>(EmbeddingOptions(options.vocab(), d).init_std(options.init_std()), gen));
  pos_emb = register_module(
      "pos_emb", std::make_shared<Embedding>(EmbeddingOptions(options.max_len(), d).init_std(options.init_std()), gen));
  auto block_list = register_module("blocks", std::make_shared<Module>("Blocks"));
  for (int64_t i = 0; i < options.layers(); ++i) {
    blocks.push_back(block_list->register_module(
        std::to_string(i),
        std::make_shared<TransformerBlock>(
            TransformerBlockOptions(d, options.heads()).d_ff(options.d_ff()).causal(true).dropout(options.dropout()),
            gen)));
  }
  ln_f = register_module("ln_f", std::make_shared<LayerNorm>(LayerNormOptions(d)));
  if (!options.tied())
    head = register_module("head", std::make_shared<Linear>(LinearOptions(d, options.vocab()).bias(false), gen));
  // GPT-2 style initialisation of every Linear in the tree.
  for (auto& [name, m] : named_modules()) {
    if (auto* l = dynamic_cast<Linear*>(m)) {
      init::normal_(l->weight, gen, 0.0, options.init_std());
      if (l->bias.defined()) init::zeros_(l->bias);
    }
  }
}

Tensor ByteLM::forward(const IndexTensor& tokens) {
  if (tokens.dim() != 2) {
    throw std::invalid_argument(describe() + ": tokens have shape " + shape_str(tokens.shape) + ", expected [B, T]");
  }
  const int64_t T = tokens.shape[1];
  if (T > options_.max_len()) {
    throw std::invalid_argument(describe() + ": sequence length " + std::to_string(T) + " exceeds max_len " +
                                std::to_string(options_.max_len()));
  }
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[t] = t;
  Tensor h = add(tok_emb->forward(tokens), pos_emb->forward(IndexTensor(pos, {T})));
  for (auto& b : blocks) h = b->forward(h);
  h = ln_f->forward(h);
  if (head) return head->forward(h);
  return linear(h, tok_emb->weight);  // tied: h · Eᵀ
}

Tensor ByteLM::loss(const IndexTensor& tokens, const IndexTensor& targets) {
  if (targets.shape != tokens.shape) {
    throw std::invalid_argument(describe() + ": targets have shape " + shape_str(targets.shape) + ", expected " +
                                shape_str(tokens.shape) + " like the tokens");
  }
  Tensor logits = forward(tokens);
  IndexTensor flat(targets.data, {targets.numel()});
  return cross_entropy(logits.reshape({-1, options_.vocab()}), flat);
}

}  // namespace nn
}  // namespace scalpel
