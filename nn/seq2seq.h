// Encoder–decoder transformer for sequence-to-sequence tasks (the paper's translation study, §5.4):
// multi-head cross-attention, the pre-LayerNorm decoder block and nn::Seq2Seq.
//
//   nn::Seq2Seq model(nn::Seq2SeqOptions().vocab(259).encoder_layers(2).decoder_layers(2)
//                         .heads(4).d_model(128).d_ff(512).max_len(96), gen);
//   Tensor memory = model.encode(src, src_lengths);                 // [B, S] -> [B, S, d]
//   Tensor logits = model.decode(tgt_in, memory, src_lengths);      // [B, T] -> [B, T, vocab]
//   Tensor loss = model.loss(src, src_lengths, tgt_in, tgt_out);    // mean CE over real targets
//
// Sources are padded on the right; src_lengths[b] says how many positions of row b are real, and
// no query (encoder self-attention or decoder cross-attention) ever sees a padded source position.
// Targets need no key mask: the decoder's self-attention is causal, so right padding cannot reach a
// real position; padded targets are excluded from the loss by kIgnoreTarget. Incremental decoding
// (start_decoding / decode_step, used by nn/seq2seq_decode.h) caches every layer's self-attention
// keys and values and the projected encoder memory, so each new token costs O(t), not O(t²).
//
// Block structure (matches torch.nn.TransformerDecoderLayer(norm_first=True, activation="gelu")):
//   h = x + SelfAttn(LN1(x));  h = h + CrossAttn(LN2(h), memory);  y = h + MLP(LN3(h)).
// Parameter names: "emb" (shared source/target embedding) or "src_emb" + "tgt_emb"; "enc_pos",
// "dec_pos"; "encoder.<i>" (TransformerBlock, non-causal), "enc_ln"; "decoder.<i>" (DecoderBlock),
// "dec_ln"; "head" unless the output projection is tied to the target embedding.
#pragma once

#include <vector>

#include "nn/transformer.h"

namespace scalpel {
namespace nn {

// Cross-attention: queries from x [B, Tq, d], keys and values from memory [B, Tk, d], heads as in
// MultiheadSelfAttention. Children: "q" Linear(d, d), "kv" Linear(d, 2d) (rows k | v, i.e. rows
// d..3d of PyTorch's in_proj_weight), "proj" Linear(d, d).
class MultiheadCrossAttention : public Module {
 public:
  MultiheadCrossAttention(const AttentionOptions& options, Generator& gen);
  // x [B, Tq, d], memory [B, Tk, d], memory_lengths [B] or empty (every key) -> [B, Tq, d]
  Tensor forward(const Tensor& x, const Tensor& memory, const std::vector<int64_t>& memory_lengths = {});
  // The memory's keys and values once, for decoding: {k, v}, each [B, H, Tk, Dh].
  std::pair<Tensor, Tensor> project_memory(const Tensor& memory);
  // forward() against keys/values from project_memory().
  Tensor attend(const Tensor& x, const Tensor& k, const Tensor& v, const std::vector<int64_t>& memory_lengths);
  std::shared_ptr<Linear> q, kv, proj;

 private:
  AttentionOptions options_;
};

struct DecoderBlockOptions {
  DecoderBlockOptions(int64_t d_model, int64_t heads) : d_model_(d_model), heads_(heads), d_ff_(4 * d_model) {}
  SCALPEL_ARG(int64_t, d_model);
  SCALPEL_ARG(int64_t, heads);
  SCALPEL_ARG(int64_t, d_ff);
  SCALPEL_ARG(double, dropout) = 0.0;
};

// The decoding state of one block: its self-attention cache and the projected encoder memory.
struct DecoderBlockState {
  KVCache self;
  Tensor memory_k, memory_v;
};

// x [B, T, d], memory [B, S, d] -> [B, T, d]; children ln1, attn (causal), ln2, cross_attn, ln3,
// fc1, fc2 (and dropout when p > 0).
class DecoderBlock : public Module {
 public:
  DecoderBlock(const DecoderBlockOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& memory, const std::vector<int64_t>& memory_lengths = {});
  DecoderBlockState start_decoding(const Tensor& memory, int64_t capacity);
  // x [B, 1, d] at position state.self.length -> [B, 1, d], no graph.
  Tensor forward_step(const Tensor& x, DecoderBlockState& state, const std::vector<int64_t>& memory_lengths);
  std::shared_ptr<LayerNorm> ln1, ln2, ln3;
  std::shared_ptr<MultiheadSelfAttention> attn;
  std::shared_ptr<MultiheadCrossAttention> cross_attn;
  std::shared_ptr<Linear> fc1, fc2;

 private:
  Tensor feed_forward(const Tensor& h);  // h + MLP(LN3(h))
  Tensor drop(const Tensor& t);
  DecoderBlockOptions options_;
  std::shared_ptr<Dropout> dropout_;
};

struct Seq2SeqOptions {
  SCALPEL_ARG(int64_t, vocab) = 259;  // bytes + pad, bos, eos (data/seq2seq_batch.h)
  SCALPEL_ARG(int64_t, encoder_layers) = 2;
  SCALPEL_ARG(int64_t, decoder_layers) = 2;
  SCALPEL_ARG(int64_t, heads) = 4;
  SCALPEL_ARG(int64_t, d_model) = 128;
  SCALPEL_ARG(int64_t, d_ff) = 512;
  SCALPEL_ARG(int64_t, max_len) = 128;          // longest source or target (positions)
  SCALPEL_ARG(bool, shared_embeddings) = true;  // one embedding for source and target tokens
  SCALPEL_ARG(bool, tied) = true;               // logits = h · E_tgtᵀ (else a bias-free "head")
  SCALPEL_ARG(double, dropout) = 0.0;
  SCALPEL_ARG(double, init_std) = 0.02;  // GPT-2 style N(0, init_std²) weights, zero biases
};

// The decoding state of the whole decoder (Seq2Seq::start_decoding).
struct Seq2SeqDecodeState {
  std::vector<DecoderBlockState> blocks;
  std::vector<int64_t> src_lengths;
  int64_t length = 0;  // target positions decoded so far
  // Keeps batch rows `rows` (beam search): caches and source lengths follow.
  void reorder(const IndexTensor& rows);
};

class Seq2Seq : public Module {
 public:
  // Target rows padded with this value are not part of the loss.
  static constexpr int64_t kIgnoreTarget = -100;

  Seq2Seq(const Seq2SeqOptions& options, Generator& gen);
  // src [B, S] ids, src_lengths [B] (1..S; empty = all S) -> memory [B, S, d]
  Tensor encode(const IndexTensor& src, const std::vector<int64_t>& src_lengths);
  // tgt_in [B, T] ids (starting with BOS) -> logits [B, T, vocab]
  Tensor decode(const IndexTensor& tgt_in, const Tensor& memory, const std::vector<int64_t>& src_lengths);
  Tensor forward(const IndexTensor& src, const std::vector<int64_t>& src_lengths, const IndexTensor& tgt_in);
  // Mean cross-entropy (nats per token) of the next-token predictions against tgt_out [B, T]
  // (kIgnoreTarget where padded).
  Tensor loss(const IndexTensor& src, const std::vector<int64_t>& src_lengths, const IndexTensor& tgt_in,
              const IndexTensor& tgt_out);

  // Incremental decoding for up to `capacity` target positions (<= max_len), no graph.
  Seq2SeqDecodeState start_decoding(const Tensor& memory, const std::vector<int64_t>& src_lengths, int64_t capacity);
  // tokens [B] at position state.length -> logits [B, vocab] for the next position.
  Tensor decode_step(const std::vector<int64_t>& tokens, Seq2SeqDecodeState& state);

  const Seq2SeqOptions& options() const { return options_; }
  std::shared_ptr<Embedding> src_emb, tgt_emb;  // the same object when shared_embeddings
  std::shared_ptr<Embedding> enc_pos, dec_pos;
  std::vector<std::shared_ptr<TransformerBlock>> encoder;
  std::vector<std::shared_ptr<DecoderBlock>> decoder;
  std::shared_ptr<LayerNorm> enc_ln, dec_ln;
  std::shared_ptr<Linear> head;  // null when tied

 private:
  Tensor embed(Embedding& tok, Embedding& pos, const IndexTensor& ids, int64_t first_position, const char* what);
  Tensor logits(const Tensor& h);
  Seq2SeqOptions options_;
};

}  // namespace nn
}  // namespace scalpel
