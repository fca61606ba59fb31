#include "nn/transformer.h"

#include <stdexcept>

#include "nn/init.h"

namespace scalpel {
namespace nn {

Embedding::Embedding(const EmbeddingOptions& options, Generator& gen) : Module("Embedding"), options_(options) {
  if (options.num_embeddings() <= 0 || options.dim() <= 0) {
    throw std::invalid_argument("Embedding: num_embeddings and dim must be positive");
  }
  weight = register_parameter("weight", Tensor::empty({options.num_embeddings(), options.dim()}));
  init::normal_(weight, gen, 0.0, options.init_std());
}

Tensor Embedding::forward(const IndexTensor& ids) { return embedding(weight, ids); }

LayerNorm::LayerNorm(const LayerNormOptions& options) : Layer("LayerNorm"), options_(options) {
  if (options.dim() <= 0) throw std::invalid_argument("LayerNorm: dim must be positive");
  if (options.affine()) {
    weight = register_parameter("weight", Tensor::ones({options.dim()}));
    bias = register_parameter("bias", Tensor::zeros({options.dim()}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != options_.dim()) {
    throw std::invalid_argument(describe() + ": input has shape " + shape_str(x.shape()) + ", expected [..., " +
                                std::to_string(options_.dim()) + "]");
  }
  return layer_norm(x, weight, bias, static_cast<float>(options_.eps()));
}

MultiheadSelfAttention::MultiheadSelfAttention(const AttentionOptions& options, Generator& gen)
    : Layer("MultiheadSelfAttention"), options_(options) {
  if (options.heads() <= 0 || options.d_model() % options.heads() != 0) {
    throw std::invalid_argument("MultiheadSelfAttention: d_model (" + std::to_string(options.d_model()) +
                                ") must be a positive multiple of heads (" + std::to_string(options.heads()) + ")");
  }
  const int64_t d = options.d_model();
  qkv = register_module("qkv", std::make_shared<Linear>(LinearOptions(d, 3 * d).bias(options.bias()), gen));
  proj = register_module("proj", std::make_shared<Linear>(LinearOptions(d, d).bias(options.bias()), gen));
}

Tensor MultiheadSelfAttention::forward(const Tensor& x) { return forward(x, {}); }

Tensor MultiheadSelfAttention::forward(const Tensor& x, const std::vector<int64_t>& key_lengths) {
  const int64_t d = options_.d_model(), H = options_.heads();
  if (x.dim() != 3 || x.size(2) != d) {
    throw std::invalid_argument(describe() + ": input has shape " + shape_str(x.shape()) + ", expected [B, T, " +
                                std::to_string(d) + "]");
  }
  const int64_t B = x.size(0), T = x.size(1);
  // [B, T, 3d] -> [B, T, 3, H, Dh] -> [3, B, H, T, Dh]
  Tensor qkv_out = qkv->forward(x).reshape({B, T, 3, H, d / H}).permute({2, 0, 3, 1, 4});
  Tensor att = scaled_dot_product_attention(qkv_out.select(0, 0), qkv_out.select(0, 1), qkv_out.select(0, 2),
                                            options_.causal(), key_lengths);
  // [B, H, T, Dh] -> [B, T, H, Dh] -> [B, T, d]
  return proj->forward(att.permute({0, 2, 1, 3}).reshape({B, T, d}));
}

KVCache MultiheadSelfAttention::make_cache(int64_t batch, int64_t capacity) const {
  const int64_t H = options_.heads(), Dh = options_.d_model() / H;
  KVCache c;
  c.k = Tensor::zeros({batch, H, capacity, Dh});
  c.v = Tensor::zeros({batch, H, capacity, Dh});
  return c;
}

Tensor MultiheadSelfAttention::forward_step(const Tensor& x, KVCache& cache) {
  const int64_t d = options_.d_model(), H = options_.heads();
  if (x.dim() != 3 || x.size(1) != 1 || x.size(2) != d || !cache.k.defined() || cache.k.size(0) != x.size(0)) {
    throw std::invalid_argument(describe() + ".forward_step: input has shape " + shape_str(x.shape()) +
                                ", expected [B, 1, " + std::to_string(d) + "] with B the cache's batch (" +
                                (cache.k.defined() ? std::to_string(cache.k.size(0)) : std::string("no cache")) + ")");
  }
  const int64_t t = cache.length;
  if (t >= cache.k.size(2)) {
    throw std::invalid_argument(describe() + ".forward_step: the cache is full (" + std::to_string(t) +
                                " positions); make_cache with a larger capacity");
  }
  NoGradGuard no_grad;
  const int64_t B = x.size(0);
  // [B, 1, 3d] -> [B, 1, 3, H, Dh] -> [3, B, H, 1, Dh]
  Tensor qkv_out = qkv->forward(x).reshape({B, 1, 3, H, d / H}).permute({2, 0, 3, 1, 4});
  cache.k.narrow(2, t, 1).copy_(qkv_out.select(0, 1));
  cache.v.narrow(2, t, 1).copy_(qkv_out.select(0, 2));
  cache.length = t + 1;
  Tensor att = scaled_dot_product_attention(qkv_out.select(0, 0), cache.k.narrow(2, 0, t + 1),
                                            cache.v.narrow(2, 0, t + 1), /*causal=*/false);
  return proj->forward(att.permute({0, 2, 1, 3}).reshape({B, 1, d}));
}

void KVCache::reorder(const IndexTensor& rows) {
  NoGradGuard no_grad;
  k = index_select(k, 0, rows);
  v = index_select(v, 0, rows);
}

TransformerBlock::TransformerBlock(const TransformerBlockOptions& options, Generator& gen)
    : Layer("TransformerBlock"), options_(options) {
  const int64_t d = options.d_model();
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(LayerNormOptions(d)));
  attn = register_module("attn", std::make_shared<MultiheadSelfAttention>(
                                     AttentionOptions(d, options.heads()).causal(options.causal()), gen));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(LayerNormOptions(d)));
  fc1 = register_module("fc1", std::make_shared<Linear>(LinearOptions(d, options.d_ff()), gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(LinearOptions(options.d_ff(), d), gen));
  if (options.dropout() > 0.0) {
    dropout_ = register_module("dropout", std::make_shared<Dropout>(DropoutOptions(options.dropout()), gen));
  }
}

Tensor TransformerBlock::forward(const Tensor& x) { return forward(x, {}); }

Tensor TransformerBlock::forward(const Tensor& x, const std::vector<int64_t>& key_lengths) {
  Tensor a = attn->forward(ln1->forward(x), key_lengths);
  return feed_forward(add(x, dropout_ ? dropout_->forward(a) : a));
}

Tensor TransformerBlock::feed_forward(const Tensor& x) {
  Tensor m =
      fc2->forward(gelu(fc1->forward(ln2->forward(x)), options_.gelu_tanh() ? GeluApprox::Tanh : GeluApprox::None));
  return add(x, dropout_ ? dropout_->forward(m) : m);
}

}  // namespace nn
}  // namespace scalpel
