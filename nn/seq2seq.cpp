#include "nn/seq2seq.h"

#include <stdexcept>
#include <string>

#include "nn/init.h"

namespace scalpel {
namespace nn {

namespace {

void check_model_input(const std::string& who, const Tensor& x, int64_t d, const char* name) {
  if (x.dim() != 3 || x.size(2) != d) {
    throw std::invalid_argument(who + ": " + name + " has shape " + shape_str(x.shape()) + ", expected [B, T, " +
                                std::to_string(d) + "]");
  }
}

}  // namespace

// ---- cross-attention ----------------------------------------------------------------------------

MultiheadCrossAttention::MultiheadCrossAttention(const AttentionOptions& options, Generator& gen)
    : Module("MultiheadCrossAttention"), options_(options) {
  if (options.heads() <= 0 || options.d_model() % options.heads() != 0) {
    throw std::invalid_argument("MultiheadCrossAttention: d_model (" + std::to_string(options.d_model()) +
                                ") must be a positive multiple of heads (" + std::to_string(options.heads()) + ")");
  }
  const int64_t d = options.d_model();
  q = register_module("q", std::make_shared<Linear>(LinearOptions(d, d).bias(options.bias()), gen));
  kv = register_module("kv", std::make_shared<Linear>(LinearOptions(d, 2 * d).bias(options.bias()), gen));
  proj = register_module("proj", std::make_shared<Linear>(LinearOptions(d, d).bias(options.bias()), gen));
}

std::pair<Tensor, Tensor> MultiheadCrossAttention::project_memory(const Tensor& memory) {
  const int64_t d = options_.d_model(), H = options_.heads();
  check_model_input(describe(), memory, d, "memory");
  const int64_t B = memory.size(0), S = memory.size(1);
  // [B, S, 2d] -> [B, S, 2, H, Dh] -> [2, B, H, S, Dh]
  Tensor kv_out = kv->forward(memory).reshape({B, S, 2, H, d / H}).permute({2, 0, 3, 1, 4});
  return {kv_out.select(0, 0), kv_out.select(0, 1)};
}

Tensor MultiheadCrossAttention::attend(const Tensor& x, const Tensor& k, const Tensor& v,
                                       const std::vector<int64_t>& memory_lengths) {
  const int64_t d = options_.d_model(), H = options_.heads();
  check_model_input(describe(), x, d, "queries");
  const int64_t B = x.size(0), T = x.size(1);
  if (k.size(0) != B) {
    throw std::invalid_argument(describe() + ": queries have batch " + std::to_string(B) + ", memory has " +
                                std::to_string(k.size(0)));
  }
  // [B, T, d] -> [B, T, H, Dh] -> [B, H, T, Dh]
  Tensor qh = q->forward(x).reshape({B, T, H, d / H}).permute({0, 2, 1, 3});
  Tensor att = scaled_dot_product_attention(qh, k, v, /*causal=*/false, memory_lengths);
  return proj->forward(att.permute({0, 2, 1, 3}).reshape({B, T, d}));
}

Tensor MultiheadCrossAttention::forward(const Tensor& x, const Tensor& memory,
                                        const std::vector<int64_t>& memory_lengths) {
  auto [k, v] = project_memory(memory);
  return attend(x, k, v, memory_lengths);
}

// ---- decoder block ------------------------------------------------------------------------------

DecoderBlock::DecoderBlock(const DecoderBlockOptions& options, Generator& gen)
    : Module("DecoderBlock"), options_(options) {
  const int64_t d = options.d_model();
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(LayerNormOptions(d)));
  attn = register_module(
      "attn", std::make_shared<MultiheadSelfAttention>(AttentionOptions(d, options.heads()).causal(true), gen));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(LayerNormOptions(d)));
  cross_attn = register_module("cross_attn",
                               std::make_shared<MultiheadCrossAttention>(AttentionOptions(d, options.heads()), gen));
  ln3 = register_module("ln3", std::make_shared<LayerNorm>(LayerNormOptions(d)));
  fc1 = register_module("fc1", std::make_shared<Linear>(LinearOptions(d, options.d_ff()), gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(LinearOptions(options.d_ff(), d), gen));
  if (options.dropout() > 0.0) {
    dropout_ = register_module("dropout", std::make_shared<Dropout>(DropoutOptions(options.dropout()), gen));
  }
}

Tensor DecoderBlock::drop(const Tensor& t) { return dropout_ ? dropout_->forward(t) : t; }

Tensor DecoderBlock::feed_forward(const Tensor& h) {
  return add(h, drop(fc2->forward(gelu(fc1->forward(ln3->forward(h))))));
}

Tensor DecoderBlock::forward(const Tensor& x, const Tensor& memory, const std::vector<int64_t>& memory_lengths) {
  Tensor h = add(x, drop(attn->forward(ln1->forward(x))));
  h = add(h, drop(cross_attn->forward(ln2->forward(h), memory, memory_lengths)));
  return feed_forward(h);
}

DecoderBlockState DecoderBlock::start_decoding(const Tensor& memory, int64_t capacity) {
  NoGradGuard no_grad;
  DecoderBlockState s;
  s.self = attn->make_cache(memory.size(0), capacity);
  auto [k, v] = cross_attn->project_memory(memory);
  s.memory_k = k.contiguous();
  s.memory_v = v.contiguous();
  return s;
}

Tensor DecoderBlock::forward_step(const Tensor& x, DecoderBlockState& state,
                                  const std::vector<int64_t>& memory_lengths) {
  NoGradGuard no_grad;
  Tensor h = add(x, attn->forward_step(ln1->forward(x), state.self));
  h = add(h, cross_attn->attend(ln2->forward(h), state.memory_k, state.memory_v, memory_lengths));
  return feed_forward(h);
}

// ---- Seq2Seq ------------------------------------------------------------------------------------

void Seq2SeqDecodeState::reorder(const IndexTensor& rows) {
  NoGradGuard no_grad;
  for (DecoderBlockState& b : blocks) {
    b.self.reorder(rows);
    b.memory_k = index_select(b.memory_k, 0, rows);
    b.memory_v = index_select(b.memory_v, 0, rows);
  }
  std::vector<int64_t> lengths(rows.data.size());
  for (size_t i = 0; i < rows.data.size(); ++i) lengths[i] = src_lengths.at(static_cast<size_t>(rows.data[i]));
  src_lengths = std::move(lengths);
}

Seq2Seq::Seq2Seq(const Seq2SeqOptions& options, Generator& gen) : Module("Seq2Seq"), options_(options) {
  if (options.encoder_layers() < 1 || options.decoder_layers() < 1 || options.max_len() <= 0 || options.vocab() <= 0) {
    throw std::invalid_argument("Seq2Seq: encoder_layers and decoder_layers must be >= 1, max_len and vocab positive");
  }
  const int64_t d = options.d_model();
  auto emb = [&](const char* name) {
    return register_module(
        name, std::make_shared<Embedding>(EmbeddingOptions(options.vocab(), d).init_std(options.init_std()), gen));
  };
  if (options.shared_embeddings()) {
    src_emb = tgt_emb = emb("emb");
  } else {
    src_emb = emb("src_emb");
    tgt_emb = emb("tgt_emb");
  }
  auto pos = [&](const char* name) {
    return register_module(
        name, std::make_shared<Embedding>(EmbeddingOptions(options.max_len(), d).init_std(options.init_std()), gen));
  };
  enc_pos = pos("enc_pos");
  dec_pos = pos("dec_pos");
  auto enc_list = register_module("encoder", std::make_shared<Module>("Blocks"));
  for (int64_t i = 0; i < options.encoder_layers(); ++i) {
    encoder.push_back(enc_list->register_module(
        std::to_string(i),
        std::make_shared<TransformerBlock>(
            TransformerBlockOptions(d, options.heads()).d_ff(options.d_ff()).causal(false).dropout(options.dropout()),
            gen)));
  }
  enc_ln = register_module("enc_ln", std::make_shared<LayerNorm>(LayerNormOptions(d)));
  auto dec_list = register_module("decoder", std::make_shared<Module>("Blocks"));
  for (int64_t i = 0; i < options.decoder_layers(); ++i) {
    decoder.push_back(dec_list->register_module(
        std::to_string(i),
        std::make_shared<DecoderBlock>(
            DecoderBlockOptions(d, options.heads()).d_ff(options.d_ff()).dropout(options.dropout()), gen)));
  }
  dec_ln = register_module("dec_ln", std::make_shared<LayerNorm>(LayerNormOptions(d)));
  if (!options.tied()) {
    head = register_module("head", std::make_shared<Linear>(LinearOptions(d, options.vocab()).bias(false), gen));
  }
  for (auto& [name, m] : named_modules()) {
    if (auto* l = dynamic_cast<Linear*>(m)) {
      init::normal_(l->weight, gen, 0.0, options.init_std());
      if (l->bias.defined()) init::zeros_(l->bias);
    }
  }
}

Tensor Seq2Seq::embed(Embedding& tok, Embedding& pos, const IndexTensor& ids, int64_t first_position,
                      const char* what) {
  if (ids.dim() != 2) {
    throw std::invalid_argument(describe() + ": " + what + " have shape " + shape_str(ids.shape) + ", expected [B, T]");
  }
  const int64_t T = ids.shape[1];
  if (first_position + T > options_.max_len()) {
    throw std::invalid_argument(describe() + ": " + what + " reach position " + std::to_string(first_position + T) +
                                ", beyond max_len " + std::to_string(options_.max_len()) +
                                " (hint: raise max_len or filter longer pairs)");
  }
  std::vector<int64_t> p(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) p[static_cast<size_t>(t)] = first_position + t;
  return add(tok.forward(ids), pos.forward(IndexTensor(p, {T})));
}

Tensor Seq2Seq::logits(const Tensor& h) {
  Tensor n = dec_ln->forward(h);
  return head ? head->forward(n) : linear(n, tgt_emb->weight);
}

Tensor Seq2Seq::encode(const IndexTensor& src, const std::vector<int64_t>& src_lengths) {
  Tensor h = embed(*src_emb, *enc_pos, src, 0, "source ids");
  if (!src_lengths.empty() && static_cast<int64_t>(src_lengths.size()) != src.shape[0]) {
    throw std::invalid_argument(describe() + ": " + std::to_string(src_lengths.size()) + " source lengths for " +
                                std::to_string(src.shape[0]) + " rows");
  }
  for (auto& b : encoder) h = b->forward(h, src_lengths);
  return enc_ln->forward(h);
}

Tensor Seq2Seq::decode(const IndexTensor& tgt_in, const Tensor& memory, const std::vector<int64_t>& src_lengths) {
  Tensor h = embed(*tgt_emb, *dec_pos, tgt_in, 0, "target ids");
  for (auto& b : decoder) h = b->forward(h, memory, src_lengths);
  return logits(h);
}

Tensor Seq2Seq::forward(const IndexTensor& src, const std::vector<int64_t>& src_lengths, const IndexTensor& tgt_in) {
  return decode(tgt_in, encode(src, src_lengths), src_lengths);
}

Tensor Seq2Seq::loss(const IndexTensor& src, const std::vector<int64_t>& src_lengths, const IndexTensor& tgt_in,
                     const IndexTensor& tgt_out) {
  if (tgt_out.shape != tgt_in.shape) {
    throw std::invalid_argument(describe() + ": target outputs have shape " + shape_str(tgt_out.shape) + ", expected " +
                                shape_str(tgt_in.shape) + " like the target inputs");
  }
  Tensor l = forward(src, src_lengths, tgt_in);
  IndexTensor flat(tgt_out.data, {tgt_out.numel()});
  return cross_entropy(l.reshape({-1, options_.vocab()}), flat, CrossEntropyOptions().set_ignore_index(kIgnoreTarget));
}

Seq2SeqDecodeState Seq2Seq::start_decoding(const Tensor& memory, const std::vector<int64_t>& src_lengths,
                                           int64_t capacity) {
  if (capacity < 1 || capacity > options_.max_len()) {
    throw std::invalid_argument(describe() + ".start_decoding: capacity " + std::to_string(capacity) +
                                ", expected 1.." + std::to_string(options_.max_len()) + " (max_len)");
  }
  Seq2SeqDecodeState s;
  for (auto& b : decoder) s.blocks.push_back(b->start_decoding(memory, capacity));
  s.src_lengths =
      src_lengths.empty() ? std::vector<int64_t>(static_cast<size_t>(memory.size(0)), memory.size(1)) : src_lengths;
  return s;
}

Tensor Seq2Seq::decode_step(const std::vector<int64_t>& tokens, Seq2SeqDecodeState& state) {
  NoGradGuard no_grad;
  const int64_t B = static_cast<int64_t>(tokens.size());
  if (state.blocks.empty() || state.blocks.front().self.k.size(0) != B) {
    throw std::invalid_argument(describe() + ".decode_step: " + std::to_string(B) +
                                " tokens, expected one per row of the decoding state");
  }
  Tensor h = embed(*tgt_emb, *dec_pos, IndexTensor(tokens, {B, 1}), state.length, "target ids");
  for (size_t i = 0; i < decoder.size(); ++i) h = decoder[i]->forward_step(h, state.blocks[i], state.src_lengths);
  ++state.length;
  return logits(h).reshape({B, options_.vocab()});
}

}  // namespace nn
}  // namespace scalpel
