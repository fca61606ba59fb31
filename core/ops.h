// Every differentiable op in Scalpel's core, declared in one place.
//
// Ops are free functions in namespace scalpel, named as in PyTorch's C++ API so code maps one to
// one. Each op's forward and backward live side by side in the file of its family:
//   core/ops/elementwise.cpp  add sub mul div neg pow exp log sqrt abs tanh sigmoid relu gelu clamp where
//   core/ops/reduce.cpp       sum mean max logsumexp sum_to
//   core/ops/matmul.cpp       matmul linear
//   core/ops/shape_ops.cpp    views (reshape ... expand), contiguous, clone, concat, stack,
//                             index_select, gather, index_add, scatter_add, embedding
//   core/ops/loss.cpp         softmax log_softmax cross_entropy mse_loss dot norm
//   core/ops/conv.cpp         conv2d
//   core/ops/pool.cpp         max_pool2d avg_pool2d global_avg_pool2d
//   core/ops/norm.cpp         batch_norm layer_norm
//   core/ops/attention.cpp    scaled_dot_product_attention
// Binary elementwise ops broadcast like NumPy; their gradients are summed back to each input's
// shape centrally by the autograd engine. Shape errors throw std::invalid_argument naming the op
// and both shapes. Adding an op touches three places: a declaration here, its family file, and a
// gradcheck test in tests/core/.
#pragma once

#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"

namespace scalpel {

// ---- elementwise (core/ops/elementwise.cpp) ------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float b);
Tensor mul(const Tensor& a, float b);
Tensor rsub(float a, const Tensor& b);  // a - b
Tensor neg(const Tensor& a);
Tensor pow(const Tensor& a, float exponent);  // scalar exponent
Tensor square(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor abs(const Tensor& a);  // subgradient 0 at 0
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor relu(const Tensor& a);  // subgradient 0 at 0
// relu(add(a, b)) in one pass each way, the same bits (a residual block's output).
Tensor add_relu(const Tensor& a, const Tensor& b);
enum class GeluApprox { None, Tanh };  // None: exact erf form
Tensor gelu(const Tensor& a, GeluApprox approx = GeluApprox::None);
Tensor clamp(const Tensor& a, float low, float high);  // gradient passes where low <= a <= high
// mask != 0 selects a, else b; all three broadcast together. The mask gets no gradient.
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties send the gradient to a

// ---- reductions (core/ops/reduce.cpp) ------------------------------------------------------------
Tensor sum(const Tensor& a);  // all elements -> scalar
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);
// Maximum along `dim`; the gradient flows to the first maximal element.
Tensor max(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& a);  // all elements -> scalar
Tensor logsumexp(const Tensor& a, int64_t dim, bool keepdim = false);
// Sums a broadcast tensor down to `shape` (the inverse of broadcasting). Differentiable.
Tensor sum_to(const Tensor& a, const Shape& shape);
// Index of the maximum along `dim` (first on ties). Not differentiable.
IndexTensor argmax(const Tensor& a, int64_t dim);

// ---- matrix products (core/ops/matmul.cpp) -------------------------------------------------------
// a [..., M, K] · b [..., K, N] -> [..., M, N]; rank >= 2, batch dims broadcast. Uses cblas_sgemm.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., in] · weightᵀ (weight [out, in]) + bias [out] -> [..., out]. bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- shape ops (core/ops/shape_ops.cpp) ----------------------------------------------------------
// The view ops are also available as Tensor members (reshape, view, transpose, ...).
Tensor reshape(const Tensor& a, const Shape& shape);
Tensor view(const Tensor& a, const Shape& shape);
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1);
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims);
Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& a, int64_t dim, int64_t index);
Tensor unsqueeze(const Tensor& a, int64_t dim);
Tensor squeeze(const Tensor& a, int64_t dim);
Tensor expand(const Tensor& a, const Shape& shape);
Tensor contiguous(const Tensor& a);
Tensor clone(const Tensor& a);
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
// Rows of `a` along `dim` picked by a 1-D index: out.size(dim) = index.numel().
Tensor index_select(const Tensor& a, int64_t dim, const IndexTensor& index);
// out[i][j] = a[i][index[i][j]] (dim = 1); index has a's rank; out has index's shape.
Tensor gather(const Tensor& a, int64_t dim, const IndexTensor& index);
// out = a with src's slices added at index along dim (src: a's shape with index.numel() at dim);
// the transpose of index_select, differentiable in a and src.
Tensor index_add(const Tensor& a, int64_t dim, const IndexTensor& index, const Tensor& src);
// out = a with src[i] added at a[..index[i]..] along dim (src and index of one shape); the
// transpose of gather, differentiable in a and src.
Tensor scatter_add(const Tensor& a, int64_t dim, const IndexTensor& index, const Tensor& src);
// weight [V, D], ids [...] -> [..., D]. Ids out of [0, V) throw.
Tensor embedding(const Tensor& weight, const IndexTensor& ids);
// Zero padding of the last two dims of an [..., H, W] tensor.
Tensor pad2d(const Tensor& a, int64_t pad_h, int64_t pad_w);

// ---- softmax, losses, dot, norm (core/ops/loss.cpp) ----------------------------------------------
Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);
struct CrossEntropyOptions {
  int64_t ignore_index = -100;   // targets equal to this are skipped (not counted in the mean)
  float label_smoothing = 0.0f;  // in [0, 1)
  CrossEntropyOptions& set_ignore_index(int64_t v) {
    ignore_index = v;
    return *this;
  }
  CrossEntropyOptions& set_label_smoothing(float v) {
    label_smoothing = v;
    return *this;
  }
};
// logits [N, C], targets [N] in [0, C) -> mean loss over non-ignored rows (scalar).
Tensor cross_entropy(const Tensor& logits, const IndexTensor& targets,
                     const CrossEntropyOptions& options = CrossEntropyOptions());
Tensor mse_loss(const Tensor& a, const Tensor& b);  // mean((a - b)^2), same shapes
Tensor dot(const Tensor& a, const Tensor& b);       // sum(a * b) over same-shaped tensors -> scalar
Tensor norm(const Tensor& a);                       // L2 norm of all elements -> scalar
Tensor norm(const Tensor& a, int64_t dim, bool keepdim = false);

// ---- helpers (not differentiable) ---------------------------------------------------------------
float max_abs_diff(const Tensor& a, const Tensor& b);
bool allclose(const Tensor& a, const Tensor& b, float rtol = 1e-5f, float atol = 1e-8f);

// ---- convolution and pooling (core/ops/conv.cpp, core/ops/pool.cpp) ---------------------------
// Output sizes follow PyTorch (floor mode): Ho = (H + 2*pad_h - kh) / stride_h + 1, likewise Wo.
// How conv2d computes: kAuto picks from the shapes alone (the same shapes always take the same
// path); kIm2col is im2col + sgemm with channel-major columns; kIm2colRows is im2col + sgemm with
// pixel-major rows built from an NHWC copy (for small planes); kDirect is the register-blocked direct
// kernel (at stride 1 it needs padding < kernel size). The paths agree to rounding (tested).
enum class ConvAlgo { kAuto, kIm2col, kIm2colRows, kDirect };
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  ConvAlgo algorithm = ConvAlgo::kAuto;
  Conv2dParams& algo(ConvAlgo a) {
    algorithm = a;
    return *this;
  }
  Conv2dParams& stride(int64_t s) {
    stride_h = stride_w = s;
    return *this;
  }
  Conv2dParams& stride(int64_t sh, int64_t sw) {
    stride_h = sh;
    stride_w = sw;
    return *this;
  }
  Conv2dParams& padding(int64_t p) {
    pad_h = pad_w = p;
    return *this;
  }
  Conv2dParams& padding(int64_t ph, int64_t pw) {
    pad_h = ph;
    pad_w = pw;
    return *this;
  }
};
// x [N, C, H, W], weight [O, C, kh, kw], bias [O] or undefined -> [N, O, Ho, Wo].
// im2col + cblas_sgemm over groups of images, or a direct kernel for stride-1 layers with few
// channels (see ConvAlgo); zero padding; any kernel size; no groups/dilation.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p = {});
// x [N, C, H, W] -> [N, C, Ho, Wo], square windows. Padding counts as -inf and must be <= kernel/2
// (as in PyTorch). The gradient goes to the first maximum of each window (row-major scan); NaN wins.
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);
// x [N, C, H, W] -> [N, C, Ho, Wo]; padded zeros count in the average (count_include_pad=true,
// PyTorch's default), so every window divides by kernel*kernel.
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);
Tensor global_avg_pool2d(const Tensor& x);  // [N, C, H, W] -> [N, C]

// ---- normalization (core/ops/norm.cpp) ----------------------------------------------------------
// x [N, C, ...] (e.g. [N, C] for BatchNorm1d, [N, C, H, W] for BatchNorm2d); weight/bias [C] (either
// may be undefined: no scale / no shift). training=true normalizes with the batch statistics (biased
// variance) and, when running_mean/running_var [C] are defined, updates them IN PLACE (under no-grad,
// bumping their version): new = (1 - momentum) * old + momentum * batch_stat, the variance unbiased
// (as PyTorch). Training needs more than one value per channel. training=false uses the running
// statistics (both must be defined); the op is then an affine map per channel.
// Gradients flow to x, weight and bias; never to the running statistics. sync (data parallel under
// mpirun, core/dist.h): the batch statistics are those of every rank's rows together, and so is
// the backward's normalisation, as one process on the global batch (SyncBatchNorm); weight and
// bias gradients stay per rank for TrainStep to average. No effect in a world of one or in eval.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean, Tensor running_var,
                  bool training, float momentum = 0.1f, float eps = 1e-5f, bool sync = false);
// relu(batch_norm(...)) fused: the same values and gradients bit for bit, with one pass and one
// tensor fewer in each direction (ResNet blocks use it).
Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                       Tensor running_var, bool training, float momentum = 0.1f, float eps = 1e-5f, bool sync = false);
// x [..., D] normalized over the last dim (biased variance, two-pass in double); weight/bias [D]
// (either may be undefined).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);

// ---- attention (core/ops/attention.cpp) ---------------------------------------------------------
// q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv] -> [B, H, Tq, Dv]:
// softmax(q kᵀ * scale + mask) v with scale = 1/sqrt(D). causal=true masks key j > query i (PyTorch's
// is_causal / tril convention; key 0 is always visible, so no row is empty and nothing is NaN).
// Fused: one sgemm pair per (b, h) forward, saved probabilities, closed-form softmax backward.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);
// The same with key padding: batch element b sees only keys 0..key_lengths[b]-1 (1 <= length <= Tk;
// one entry per batch element; empty = every key), e.g. an encoder's padded source in cross-attention.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    const std::vector<int64_t>& key_lengths);

}  // namespace scalpel
