// Matrix products through sgemm (core/kernels/gemm.h: OpenBLAS or the own AVX-512 kernel): matmul (2-D and batched with
// broadcasting) and linear.
//
// Operands are passed to BLAS without copying whenever their last two dims are row-major
// (strides [ld, 1]) or column-major (strides [1, ld], i.e. a transposed view); anything else is
// made contiguous first. Backward writes straight into the gradient buffers with beta = 1 when a
// partial sum already exists (GradSink::accumulate), so gradients of shared weights add up in
// place. Batches of small products run one sgemm per OpenMP thread (each then runs on its thread
// alone); large products use all threads (kernels::sgemm picks OpenBLAS or the own kernel).

#include <cstring>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "core/kernels/gemm.h"
#include "core/kernels/loops.h"
#include "core/ops.h"

namespace scalpel {

namespace {

// One operand as BLAS sees it: a batch of rows x cols matrices.
struct MatDesc {
  Tensor keep;  // keeps a contiguous copy alive when one was needed
  const float* data = nullptr;
  int64_t rows = 0, cols = 0;
  bool trans = false;  // stored column-major (a transposed row-major matrix)
  int64_t ld = 0;
  Shape batch_shape;
  Shape batch_strides;  // of batch_shape
};

MatDesc describe(const Tensor& t) {
  MatDesc d;
  const int64_t r = t.dim();
  d.rows = t.shape()[r - 2];
  d.cols = t.shape()[r - 1];
  const int64_t s0 = t.strides()[r - 2], s1 = t.strides()[r - 1];
  Tensor src = t;
  if ((s1 == 1 || d.cols == 1) && s0 >= std::max<int64_t>(d.cols, 1)) {
    d.trans = false;
    d.ld = std::max<int64_t>(s0, 1);
  } else if ((s0 == 1 || d.rows == 1) && s1 >= std::max<int64_t>(d.rows, 1)) {
    d.trans = true;
    d.ld = std::max<int64_t>(s1, 1);
  } else {
    src = t.contiguous();
    d.keep = src;
    d.trans = false;
    d.ld = std::max<int64_t>(d.cols, 1);
  }
  d.data = src.data();
  d.batch_shape.assign(src.shape().begin(), src.shape().end() - 2);
  d.batch_strides.assign(src.strides().begin(), src.strides().end() - 2);
  return d;
}

// C[b] = alpha * op(A[b]) · op(B[b]) + beta * C[b] for every index b of `batch` (A, B, C offsets
// from their broadcast batch strides). op(A) is M x K, op(B) is K x N; C is row-major with ldc.
// transA/transB say whether to transpose the operand as described (on top of its storage order).
void bgemm(const MatDesc& A, bool transA, const MatDesc& B, bool transB, float* C, const Shape& c_batch_strides,
           int64_t ldc, int64_t M, int64_t N, int64_t K, float beta, const Shape& batch) {
  const bool ta = A.trans != transA;
  const bool tb = B.trans != transB;
  const Shape sa = broadcast_strides(A.batch_shape, A.batch_strides, batch);
  const Shape sb = broadcast_strides(B.batch_shape, B.batch_strides, batch);
  const int64_t nb = shape_numel(batch);
  bool c_shared = false;  // several batch entries write the same C block: accumulate serially
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i] > 1 && c_batch_strides[i] == 0) c_shared = true;
  }
  if (M == 0 || N == 0) return;
  auto offsets = [&](int64_t b, int64_t& oa, int64_t& ob, int64_t& oc) {
    oa = ob = oc = 0;
    for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
      const int64_t i = b % batch[d];
      b /= batch[d];
      oa += i * sa[d];
      ob += i * sb[d];
      oc += i * c_batch_strides[d];
    }
  };
  if (K == 0) {  // empty contraction: C = beta * C
    for (int64_t b = 0; b < nb; ++b) {
      int64_t oa, ob, oc;
      offsets(b, oa, ob, oc);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) C[oc + i * ldc + j] = beta == 0.0f ? 0.0f : C[oc + i * ldc + j];
    }
    return;
  }
  auto one = [&](int64_t b, float bt) {
    int64_t oa, ob, oc;
    offsets(b, oa, ob, oc);
    kernels::sgemm(ta, tb, M, N, K, 1.0f, A.data + oa, A.ld, B.data + ob, B.ld, bt, C + oc, ldc);
  };
  if (c_shared) {
    if (beta == 0.0f) {
      // Several products add into one block: the first write to a block overwrites, the rest add.
      std::unordered_set<int64_t> written;
      for (int64_t b = 0; b < nb; ++b) {
        int64_t oa, ob, oc;
        offsets(b, oa, ob, oc);
        one(b, written.insert(oc).second ? 0.0f : 1.0f);
      }
    } else {
      for (int64_t b = 0; b < nb; ++b) one(b, beta);
    }
    return;
  }
  const int64_t flops = M * N * K;
  if (nb > 1 && flops < (1 << 21) && num_threads() > 1) {
    // Many small products: one per thread, each single-threaded inside OpenBLAS.
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; ++b) one(b, beta);
  } else {
    for (int64_t b = 0; b < nb; ++b) one(b, beta);
  }
}

Shape batch_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

// Batch strides of a contiguous buffer of shape [batch_src..., r, c], broadcast to `batch`.
Shape buffer_batch_strides(const Shape& full_shape, const Shape& batch) {
  const Shape st = contiguous_strides(full_shape);
  const Shape bshape(full_shape.begin(), full_shape.end() - 2);
  const Shape bst(st.begin(), st.end() - 2);
  return broadcast_strides(bshape, bst, batch);
}

// True if a row-major [batch..., M, K] operand can be read as one [batch*M, K] matrix.
bool rows_mergeable(const MatDesc& d, const Shape& batch) {
  if (d.trans || d.batch_shape != batch) return false;
  int64_t expect = d.rows * d.ld;
  if (d.ld != d.cols) return false;
  for (size_t i = batch.size(); i-- > 0;) {
    if (batch[i] != 1 && d.batch_strides[i] != expect) return false;
    expect *= batch[i];
  }
  return true;
}

bool all_broadcast(const MatDesc& d) { return shape_numel(d.batch_shape) == 1; }

// The operand as a single matrix: batch dims dropped (all of size 1, or folded into `rows`).
MatDesc single(MatDesc d, int64_t rows) {
  d.rows = rows;
  d.batch_shape = {};
  d.batch_strides = {};
  return d;
}

}  // namespace

// a [..., M, K] · b [..., K, N] -> out [broadcast(...), M, N]
Tensor matmul(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw std::invalid_argument("matmul: an operand is undefined");
  if (a.dim() < 2 || b.dim() < 2) {
    throw std::invalid_argument("matmul: both operands need at least 2 dimensions, a is " + shape_str(a.shape()) +
                                ", b is " + shape_str(b.shape()) + " (use unsqueeze() for vectors)");
  }
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (b.size(-2) != K) {
    throw std::invalid_argument("matmul: inner dimensions differ: a is " + shape_str(a.shape()) + ", b is " +
                                shape_str(b.shape()));
  }
  const Shape batch = broadcast_shapes(batch_of(a), batch_of(b), "matmul (batch dimensions)");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = make_tensor(out_shape);
  const MatDesc A = describe(a), B = describe(b);
  if (all_broadcast(B) && rows_mergeable(A, batch)) {
    const int64_t rows = shape_numel(batch) * M;
    bgemm(single(A, rows), false, single(B, K), false, out.data(), {}, N, rows, N, K, 0.0f, {});
  } else {
    bgemm(A, false, B, false, out.data(), buffer_batch_strides(out_shape, batch), N, M, N, K, 0.0f, batch);
  }
  if (should_record({a, b})) {
    SavedTensor sa = b.requires_grad() ? save(a, "matmul") : SavedTensor();
    SavedTensor sb = a.requires_grad() ? save(b, "matmul") : SavedTensor();
    record("matmul", out, {a, b}, [sa, sb, batch, M, N, K](const Tensor& g, GradSink& s) {
      if (s.create_graph()) {  // the same products as recorded ops (batch sums are the engine's)
        if (s.needs(0)) s.add(0, matmul(g, s.saved(sb).transpose(-2, -1)));
        if (s.needs(1)) s.add(1, matmul(s.saved(sa).transpose(-2, -1), g));
        return;
      }
      const MatDesc G = describe(g);
      if (s.needs(0)) {  // dA = dC · Bᵀ : [M, N] · [N, K]
        const MatDesc Bd = describe(sb.get());
        const Shape& ashape = s.input_shape(0);
        GradSink::Accum acc = s.accumulate(0);
        if (all_broadcast(Bd) && rows_mergeable(G, batch) &&
            shape_numel(Shape(ashape.begin(), ashape.end() - 2)) == shape_numel(batch)) {
          const int64_t rows = shape_numel(batch) * M;
          bgemm(single(G, rows), false, single(Bd, K), true, acc.data, {}, K, rows, K, N, acc.beta, {});
        } else {
          bgemm(G, false, Bd, true, acc.data, buffer_batch_strides(ashape, batch), K, M, K, N, acc.beta, batch);
        }
      }
      if (s.needs(1)) {  // dB = Aᵀ · dC : [K, M] · [M, N]
        const MatDesc Ad = describe(sa.get());
        const Shape& bshape = s.input_shape(1);
        GradSink::Accum acc = s.accumulate(1);
        if (shape_numel(Shape(bshape.begin(), bshape.end() - 2)) == 1 && rows_mergeable(Ad, batch) &&
            rows_mergeable(G, batch)) {
          // Sum over the batch folded into the contraction: [K, batch*M] · [batch*M, N].
          const int64_t rows = shape_numel(batch) * M;
          bgemm(single(Ad, rows), true, single(G, rows), false, acc.data, {}, N, K, N, rows, acc.beta, {});
        } else {
          bgemm(Ad, true, G, false, acc.data, buffer_batch_strides(bshape, batch), N, K, N, M, acc.beta, batch);
        }
      }
    });
  }
  return out;
}

// x [..., in] · weight [out, in]ᵀ + bias [out] -> [..., out]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (!x.defined() || !weight.defined()) throw std::invalid_argument("linear: input or weight is undefined");
  if (weight.dim() != 2) {
    throw std::invalid_argument("linear: weight must be 2-D [out, in], got " + shape_str(weight.shape()));
  }
  const int64_t out_f = weight.size(0), in_f = weight.size(1);
  if (x.dim() < 1 || x.size(-1) != in_f) {
    throw std::invalid_argument("linear: input has shape " + shape_str(x.shape()) + ", expected [..., " +
                                std::to_string(in_f) + "] to match weight " + shape_str(weight.shape()));
  }
  if (bias.defined() && bias.shape() != Shape{out_f}) {
    throw std::invalid_argument("linear: bias has shape " + shape_str(bias.shape()) + ", expected [" +
                                std::to_string(out_f) + "]");
  }
  const Tensor xc = x.contiguous();
  const int64_t rows = x.numel() / std::max<int64_t>(in_f, 1);
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  Tensor out = make_tensor(out_shape);
  float* po = out.data();
  float beta = 0.0f;
  if (bias.defined()) {
    const Tensor bc = bias.contiguous();
    const float* pb = bc.data();
    parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(po + r * out_f, pb, static_cast<size_t>(out_f) * sizeof(float));
    });
    beta = 1.0f;
  }
  const MatDesc W = describe(weight);
  if (rows > 0 && out_f > 0) {
    if (in_f > 0) {
      kernels::sgemm(false, !W.trans, rows, out_f, in_f, 1.0f, xc.data(), in_f, W.data, W.ld, beta, po, out_f);
    } else if (!bias.defined()) {
      kernels::fill(po, rows * out_f, 0.0f);
    }
  }
  if (should_record({x, weight, bias})) {
    SavedTensor sx = weight.requires_grad() ? save(xc, "linear") : SavedTensor();
    SavedTensor sw = x.requires_grad() ? save(weight, "linear") : SavedTensor();
    record("linear", out, {x, weight, bias}, [sx, sw, rows, in_f, out_f](const Tensor& g, GradSink& s) {
      if (s.create_graph()) {  // the same three products as recorded ops on [rows, .] matrices
        const Tensor g2 = g.reshape({rows, out_f});
        if (s.needs(0)) s.add(0, matmul(g2, s.saved(sw)).reshape(s.input_shape(0)));
        if (s.needs(1)) s.add(1, matmul(g2.transpose(0, 1), s.saved(sx).reshape({rows, in_f})));
        if (s.needs(2)) s.add(2, sum(g2, {0}));
        return;
      }
      const Tensor gc = g.contiguous();
      if (s.needs(0)) {  // dX [rows, in] = dY [rows, out] · W [out, in]
        const MatDesc Wd = describe(sw.get());
        GradSink::Accum acc = s.accumulate(0);
        kernels::sgemm(false, Wd.trans, rows, in_f, out_f, 1.0f, gc.data(), out_f, Wd.data, Wd.ld, acc.beta, acc.data,
                       in_f);
      }
      if (s.needs(1)) {  // dW [out, in] = dYᵀ [out, rows] · X [rows, in]
        GradSink::Accum acc = s.accumulate(1);
        kernels::sgemm(true, false, out_f, in_f, rows, 1.0f, gc.data(), out_f, sx.get().data(), in_f, acc.beta,
                       acc.data, in_f);
      }
      if (s.needs(2)) {  // db [out] = column sums of dY
        GradSink::Accum acc = s.accumulate(2);
        const float* pg = gc.data();
        parallel_for(out_f, 64, [&](int64_t j0, int64_t j1) {
          // Row by row into one double per column: the same order per column (r ascending) as a
          // column walk, but contiguous and vectorisable instead of one dependent add per load.
          std::vector<double> sum(static_cast<size_t>(j1 - j0), 0.0);
          for (int64_t r = 0; r < rows; ++r) {
            const float* row = pg + r * out_f + j0;
            for (int64_t j = 0; j < j1 - j0; ++j) sum[j] += row[j];
          }
          for (int64_t j = j0; j < j1; ++j) {
            acc.data[j] = static_cast<float>(sum[j - j0]) + (acc.beta == 0.0f ? 0.0f : acc.data[j]);
          }
        });
      }
    });
  }
  return out;
}

}  // namespace scalpel
