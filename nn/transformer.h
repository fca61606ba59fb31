// Sequence layers: Embedding, LayerNorm, multi-head self-attention (optionally causal, optionally
// with key padding) and the pre-LayerNorm transformer block used by ByteLM and as the encoder block
// of nn::Seq2Seq (nn/seq2seq.h). Causal self-attention also runs incrementally for decoding, one
// position at a time against a KVCache (forward_step), O(t) per token instead of O(t²).
//
//   auto block = std::make_shared<nn::TransformerBlock>(
//       nn::TransformerBlockOptions(256, 8).d_ff(1024).causal(true), gen);
//   Tensor y = block->forward(x);  // x [B, T, 256] -> [B, T, 256]
//
// The block computes  h = x + Attn(LN1(x));  y = h + MLP(LN2(h))  with MLP = fc2(GELU(fc1(.))).
// Attention projects q, k, v with one Linear "qkv" (d -> 3d, rows ordered q | k | v as in
// PyTorch's in_proj_weight) and recombines the heads with Linear "proj" (d -> d).
#pragma once

#include "nn/linear.h"
#include "nn/module.h"

namespace scalpel {
namespace nn {

struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t dim) : num_embeddings_(num_embeddings), dim_(dim) {}
  SCALPEL_ARG(int64_t, num_embeddings);
  SCALPEL_ARG(int64_t, dim);
  SCALPEL_ARG(double, init_std) = 1.0;  // weight ~ N(0, init_std^2) (PyTorch: 1)
};

// ids [...] -> [..., dim]; weight [num_embeddings, dim]
class Embedding : public Module {
 public:
  Embedding(const EmbeddingOptions& options, Generator& gen);
  Tensor forward(const IndexTensor& ids);
  Tensor weight;

 private:
  EmbeddingOptions options_;
};

struct LayerNormOptions {
  explicit LayerNormOptions(int64_t dim) : dim_(dim) {}
  SCALPEL_ARG(int64_t, dim);
  SCALPEL_ARG(double, eps) = 1e-5;
  SCALPEL_ARG(bool, affine) = true;
};

// x [..., dim] -> same shape, normalised over the last dim
class LayerNorm : public Layer {
 public:
  explicit LayerNorm(const LayerNormOptions& options);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;

 private:
  LayerNormOptions options_;
};

struct AttentionOptions {
  AttentionOptions(int64_t d_model, int64_t heads) : d_model_(d_model), heads_(heads) {}
  SCALPEL_ARG(int64_t, d_model);
  SCALPEL_ARG(int64_t, heads);
  SCALPEL_ARG(bool, causal) = false;
  SCALPEL_ARG(bool, bias) = true;
};

// Keys and values of the positions decoded so far, per batch row: k, v [B, H, capacity, Dh], of
// which the first `length` positions are filled. Built by MultiheadSelfAttention::make_cache.
struct KVCache {
  Tensor k, v;
  int64_t length = 0;
  // Keeps batch rows `rows` (in that order; repeats allowed), e.g. the surviving beams of a beam
  // search: row i of the result is row rows[i] of the cache.
  void reorder(const IndexTensor& rows);
};

// x [B, T, d] -> [B, T, d]
class MultiheadSelfAttention : public Layer {
 public:
  MultiheadSelfAttention(const AttentionOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override;
  // With key padding: batch row b attends only to positions 0..key_lengths[b]-1 (empty = all).
  Tensor forward(const Tensor& x, const std::vector<int64_t>& key_lengths);
  // An empty cache for `batch` rows and up to `capacity` positions.
  KVCache make_cache(int64_t batch, int64_t capacity) const;
  // Decoding, no graph: x [B, 1, d] is position t = cache.length; appends its key and value to the
  // cache and attends over positions 0..t. Equals row t of forward() on the whole prefix when causal.
  Tensor forward_step(const Tensor& x, KVCache& cache);
  std::shared_ptr<Linear> qkv, proj;

 private:
  AttentionOptions options_;
};

struct TransformerBlockOptions {
  TransformerBlockOptions(int64_t d_model, int64_t heads) : d_model_(d_model), heads_(heads), d_ff_(4 * d_model) {}
  SCALPEL_ARG(int64_t, d_model);
  SCALPEL_ARG(int64_t, heads);
  SCALPEL_ARG(int64_t, d_ff);
  SCALPEL_ARG(bool, causal) = true;
  SCALPEL_ARG(double, dropout) = 0.0;
  SCALPEL_ARG(bool, gelu_tanh) = false;
};

// x [B, T, d] -> [B, T, d]; children ln1, attn, ln2, fc1, fc2 (and dropout when p > 0)
class TransformerBlock : public Layer {
 public:
  TransformerBlock(const TransformerBlockOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override;
  // With key padding in the self-attention (an encoder over padded sources).
  Tensor forward(const Tensor& x, const std::vector<int64_t>& key_lengths);
  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<MultiheadSelfAttention> attn;
  std::shared_ptr<Linear> fc1, fc2;

 private:
  Tensor feed_forward(const Tensor& x);  // x + MLP(LN2(x))
  TransformerBlockOptions options_;
  std::shared_ptr<Dropout> dropout_;
};

}  // namespace nn
}  // namespace scalpel
